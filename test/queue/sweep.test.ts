// The worker's sweep of expired results against real Redis: BullMQ drops a finished job past its
// keep time only when another job finishes, so on a quiet queue the sweep has to.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Queue, Worker, UnrecoverableError } from 'bullmq';
import { connectionOf } from '../../src/queue/jobs.ts';
import { keepSecondsOf, sweepExpired } from '../../src/queue/sweep.ts';
import { REDIS_URL, noRedis, runBin } from '../pacs/helpers.ts';

test('keepSecondsOf: the age a job was submitted with, per outcome; none without one', () => {
  const opts = { removeOnComplete: { age: 60 }, removeOnFail: { age: 7200 } };
  assert.equal(keepSecondsOf({ opts }, 'completed'), 60);
  assert.equal(keepSecondsOf({ opts }, 'failed'), 7200);
  assert.equal(keepSecondsOf({ opts: { removeOnComplete: true } }, 'completed'), null);
  assert.equal(keepSecondsOf({ opts: {} }, 'failed'), null);
  assert.equal(keepSecondsOf({ opts: { removeOnComplete: { count: 5 } } }, 'completed'), null);
});

test('sweepExpired: completed and failed jobs past their keep time go, the others stay', { skip: noRedis, timeout: 60_000 }, async () => {
  const name = `test-sweep-${process.pid}-${Date.now()}`;
  const connection = connectionOf(REDIS_URL);
  const queue = new Queue(name, { connection });
  const worker = new Worker(
    name,
    async (job) => {
      if (job.data.fail) throw new UnrecoverableError('refused');
      return { ok: true };
    },
    { connection, concurrency: 1 },
  );
  try {
    // 3 short-lived completed, 2 short-lived failed, 2 kept for an hour, 1 kept until removed by hand.
    // Short-lived is 3 s: the 8 jobs all finish well within that, so BullMQ removes none of them
    // itself; the sweeps below are given their "now" explicitly, so nothing depends on the clock.
    const add = (id: string, fail: boolean, age: number | null) =>
      queue.add('seg', { fail }, { jobId: id, ...(age === null ? {} : { removeOnComplete: { age }, removeOnFail: { age } }) });
    for (const id of ['c1', 'c2', 'c3']) await add(id, false, 3);
    for (const id of ['f1', 'f2']) await add(id, true, 3);
    await add('keep-c', false, 3600);
    await add('keep-f', true, 3600);
    await add('by-hand', false, null);
    const t0 = Date.now();
    while ((await queue.getCompletedCount()) + (await queue.getFailedCount()) < 8 && Date.now() - t0 < 30_000)
      await new Promise((r) => setTimeout(r, 50));
    await worker.close();
    const finished = (await queue.getJobs(['completed', 'failed'])).map((j) => j.finishedOn!);
    assert.equal(finished.length, 8, 'BullMQ left all 8 finished jobs in place');
    const first = Math.min(...finished),
      last = Math.max(...finished);
    assert.equal(await sweepExpired(queue, first), 0, 'nothing has expired yet');
    assert.equal(await sweepExpired(queue, last + 3001, 2), 5, 'in pages of 2, every expired job is found');
    const left = (await queue.getJobs(['completed', 'failed'])).map((j) => j.id).sort();
    assert.deepEqual(left, ['by-hand', 'keep-c', 'keep-f']);
    assert.equal(await sweepExpired(queue, last + 3601_000), 2, 'an hour later the hour-long ones go too');
    assert.deepEqual(
      (await queue.getJobs(['completed', 'failed'])).map((j) => j.id),
      ['by-hand'],
    );
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
});

test('worker --sweep-every: a bad duration is one line, before any work', async () => {
  for (const bad of ['0s', 'soon']) {
    const r = await runBin(['worker', '--dicomweb', 'http://127.0.0.1:1/dicom-web', '--sweep-every', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr.trim(), /^noduleseg: --sweep-every: /);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  }
});
