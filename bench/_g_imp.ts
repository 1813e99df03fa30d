const mods = process.argv.slice(2);
const rss = () => Math.round(process.memoryUsage().rss / 1048576);
const base = rss();
let prev = base;
console.log('base', base);
for (const m of mods) {
  await import(m);
  const r = rss();
  console.log(m.padEnd(50), r, '+' + (r - prev));
  prev = r;
}
global.gc?.();
console.log('after gc', rss(), JSON.stringify(process.memoryUsage()));
