/** The dead-letter list: jobs that failed for good, with their error, kept for the jobs' retention time. */
export function deadLetterKey(queue: string): string {
  return `bull:${queue}:dead-letter`;
}

export interface DeadLetter {
  id: string;
  data: unknown;
  error: string;
  attempts: number;
  failedAt: string;
  worker: string;
}
