import { Command, CommanderError, Help } from 'commander';
import { join } from 'node:path';
import { isUserError } from '../errors.ts';
import { refuseOutputsOverInputs } from '../io/guard.ts';
import { VERSION } from '../version.ts';

/** Each command lives in its own file and adds itself to the program. */
export type CommandRegistrar = (program: Command) => void;

interface CommandEntry {
  name: string;
  load: () => Promise<{ register: CommandRegistrar }>;
  /**
   * For a module that loads libtorch when imported: its line in the command list, so that
   * `--help` and the other commands need not import it. The module itself loads only when its
   * command is run or its help asked for. (test/cli/startup.test.ts checks these against the
   * modules.)
   */
  listing?: { term: string; description: string };
}

// Commands whose modules import nothing heavy at top level are registered as they are; their
// actions import what they need (libtorch only in segment, train, finetune, serve, benchmark).
const commands: CommandEntry[] = [
  {
    name: 'train',
    load: () => import('./train.ts'),
    listing: { term: 'train [options]', description: 'train a model from a JSON config on lidc-crops (validation on val each epoch)' },
  },
  { name: 'segment', load: () => import('./segment.ts') },
  { name: 'eval', load: () => import('./eval.ts') },
  {
    name: 'benchmark',
    load: () => import('./benchmark.ts'),
    listing: {
      term: 'benchmark',
      description:
        'the real task, measured: crops by type, size and pleural contact against each reader; cross-validation; whole scans prompted by a point or a box',
    },
  },
  { name: 'inspect', load: () => import('./inspect.ts') },
  { name: 'lidc', load: () => import('./lidc.ts') },
  { name: 'serve', load: () => import('./serve.ts') },
  { name: 'finetune', load: () => import('./finetune.ts') },
  { name: 'synth', load: () => import('./synth.ts') },
  { name: 'submit', load: () => import('./submit.ts') },
  { name: 'worker', load: () => import('./worker.ts') },
  { name: 'jobs', load: () => import('./jobs.ts') },
];

/** The command an argv runs or asks help for (`noduleseg help train` -> train); top-level options take no value. */
export function commandNamed(argv: readonly string[]): string | undefined {
  const words = argv.slice(2).filter((a) => !a.startsWith('-'));
  return words[0] === 'help' ? words[1] : words[0];
}

/**
 * The program for `argv`: every command is listed, but a module with a `listing` is imported
 * only when `argv` names its command (or with `loadAll`, for tests).
 */
export async function buildProgram(argv: readonly string[] = [], options: { loadAll?: boolean } = {}): Promise<Command> {
  const program = new Command();
  const listed = new Map<Command, string>();
  const help = new Help();
  program
    .name('noduleseg')
    .description('Lung nodule segmentation in chest CT (joint segmentation-classification network, libtorch)')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride()
    .configureHelp({ subcommandTerm: (cmd) => listed.get(cmd) ?? help.subcommandTerm(cmd) });
  const wanted = commandNamed(argv);
  for (const c of commands) {
    if (c.listing && !options.loadAll && c.name !== wanted) {
      listed.set(program.command(c.name).description(c.listing.description), c.listing.term);
    } else {
      (await c.load()).register(program);
    }
  }
  program.hook('preAction', async (_program, action) => {
    if (action.name() === 'train' && action.parent === program) await checkTrainPaths(action.opts());
  });
  return program;
}

/**
 * train writes into --out (default runs/<config name>); it may not write over its config or into
 * the data folder. Checked before the command loads the engine.
 */
async function checkTrainPaths(opts: { config?: string; out?: string }): Promise<void> {
  if (opts.config === undefined) return;
  const { loadTrainConfig } = await import('../train/config.ts');
  const { dataRoot } = await import('../data/paths.ts');
  const { TRAIN_OUTPUT_FILES } = await import('../train/output-files.ts');
  const out = opts.out ?? join('runs', loadTrainConfig(opts.config).name);
  const files = Object.values(TRAIN_OUTPUT_FILES).map((f) => join(out, f));
  refuseOutputsOverInputs([out, ...files], [opts.config, dataRoot()]);
}

/** Runs the command line and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const program = await buildProgram(argv);
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
