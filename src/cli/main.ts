import { Command, CommanderError } from 'commander';
import { isUserError } from '../errors.ts';
import { VERSION } from '../version.ts';

/** Each command lives in its own file and adds itself to the program. */
export type CommandRegistrar = (program: Command) => void;

const registrars: Array<() => Promise<{ register: CommandRegistrar }>> = [
  // One line per command module, e.g. () => import('./inspect.ts'),
  () => import('./train.ts'),
  () => import('./segment.ts'),
  () => import('./eval.ts'),
  () => import('./benchmark.ts'),
  () => import('./inspect.ts'),
  () => import('./lidc.ts'),
  () => import('./serve.ts'),
  () => import('./finetune.ts'),
  () => import('./synth.ts'),
];

export async function buildProgram(): Promise<Command> {
  const program = new Command();
  program
    .name('noduleseg')
    .description('Lung nodule segmentation in chest CT (joint segmentation-classification network, libtorch)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  for (const load of registrars) (await load()).register(program);
  return program;
}

/** Runs the command line and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return e.exitCode;
    }
    if (isUserError(e)) {
      process.stderr.write(`noduleseg: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
