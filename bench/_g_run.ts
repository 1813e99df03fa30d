const m = await import('./_g_poll.ts'); await m.run(process.argv.slice(2));
