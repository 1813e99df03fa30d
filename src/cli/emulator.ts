import type { Command } from './command.ts';

export const emulatorCommand: Command = {
  summary: 'serve the Admin API emulator over a scenario',
  usage: 'keywarden emulator --scenario <file|name> --port <p>   (see `keywarden emulator --help`)',
  async run(args) {
    // the emulator is loaded only when asked for: a worker's startup never pays for it
    const { runEmulatorCommand } = await import('../emulator/command.ts');
    return runEmulatorCommand(args);
  },
};
