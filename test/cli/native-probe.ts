// Runs one command line in this process, then records whether the libtorch addon got loaded:
//   NODULESEG_PROBE_OUT=<file> node --import tsx test/cli/native-probe.ts <args...>
// writes {"code": <exit code>, "native": <bool>} to that file (stdout and stderr are the command's).
import { readFileSync, writeFileSync } from 'node:fs';
import { main } from '../../src/cli/main.ts';

const code = await main(['node', 'noduleseg', ...process.argv.slice(2)]);
const native = readFileSync('/proc/self/maps', 'utf8').includes('noduleseg_native');
writeFileSync(process.env['NODULESEG_PROBE_OUT']!, JSON.stringify({ code, native }));
