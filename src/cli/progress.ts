/** Progress display: a cli-progress bar on a terminal, periodic plain lines otherwise (logs, CI). */
import cliProgress from 'cli-progress';

export interface Progress {
  start(total: number, label: string): void;
  update(value: number, info?: string): void;
  stop(): void;
}

export function makeProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: '{label} |{bar}| {value}/{total} {info} eta {eta_formatted}',
        stream,
        hideCursor: true,
        clearOnComplete: false,
        barsize: 28,
      },
      cliProgress.Presets.shades_classic,
    );
    return {
      start: (total, label) => bar.start(total, 0, { label, info: '' }),
      update: (value, info = '') => bar.update(value, { info }),
      stop: () => bar.stop(),
    };
  }
  let total = 0,
    label = '',
    lastTenth = -1,
    t0 = 0;
  return {
    start(t, l) {
      total = t;
      label = l;
      lastTenth = -1;
      t0 = Date.now();
    },
    update(value, info = '') {
      const tenth = Math.floor((10 * value) / Math.max(1, total));
      if (tenth === lastTenth) return;
      lastTenth = tenth;
      stream.write(`${label} ${value}/${total} ${info} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
    },
    stop() {},
  };
}
