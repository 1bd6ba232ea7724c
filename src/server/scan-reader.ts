/** The viewer's scan reader (a worker thread): reads one scan (read-scan.ts) and posts it back. */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage, readScanFiles, toMessage, type ScanRequest } from './read-scan.ts';

const port = parentPort;
if (!port) throw new Error('scan-reader.ts runs as a worker thread (started by the viewer server)');
try {
  const { message, transfer } = toMessage(await readScanFiles(workerData as ScanRequest));
  port.postMessage(message, transfer);
} catch (e) {
  port.postMessage(errorMessage(e));
}
