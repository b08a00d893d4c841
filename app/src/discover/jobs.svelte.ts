// The download jobs the Discover page shows: read from the server (which keeps them until it stops, so
// the list survives leaving the page and coming back), then each running one polled about twice a second.
import { ApiError } from '../lib/api';
import { listJobs, jobStatus, pauseJob, resumeJob, startDownload, type DownloadJob } from './api';

export const POLL_MS = 500;
export const IDLE_MS = 3000;

export class DownloadBoard {
  jobs = $state<DownloadJob[]>([]);
  /** A failure of the board itself (the jobs could not be read, a download could not start). */
  error = $state('');
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  /** Read the server's jobs and keep the running ones up to date until `stop()`. */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      this.jobs = (await listJobs()).reverse(); // newest first
    } catch (err) {
      this.error = messageOf(err);
    }
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Start (or find) the download of `model` (a download identifier); throws the server's error. */
  async download(model: string): Promise<DownloadJob> {
    const job = await startDownload(model);
    this.put(job);
    this.reschedule();
    return job;
  }

  async pause(jobId: string): Promise<void> {
    await this.act(() => pauseJob(jobId));
  }

  async resume(jobId: string): Promise<void> {
    await this.act(() => resumeJob(jobId));
  }

  /** The job of a download identifier, if any. */
  jobFor(identifier: string): DownloadJob | undefined {
    return this.jobs.find((job) => job.download_identifier === identifier);
  }

  private async act(call: () => Promise<DownloadJob>): Promise<void> {
    try {
      this.error = '';
      this.put(await call());
    } catch (err) {
      this.error = messageOf(err);
    }
    this.reschedule();
  }

  private put(job: DownloadJob): void {
    const index = this.jobs.findIndex((j) => j.job_id === job.job_id);
    if (index >= 0) this.jobs[index] = job;
    else this.jobs.unshift(job);
  }

  /** A job the server no longer knows (it was restarted): gone from the list. */
  private drop(jobId: string): void {
    this.jobs = this.jobs.filter((job) => job.job_id !== jobId);
  }

  /** Whether a finished job downloaded something from `repo` (user/repo) since the results were read. */
  finishedIn(repo: string): boolean {
    const prefix = repo.toLowerCase() + '/';
    return this.jobs.some(
      (job) =>
        (job.status === 'completed' || job.status === 'already_downloaded') &&
        job.download_identifier.toLowerCase().startsWith(prefix),
    );
  }

  /** Poll at the pace the jobs now need (a download just started: soon, not after an idle wait). */
  private reschedule(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.timer !== null) return;
    const busy = this.jobs.some((job) => job.status === 'downloading');
    this.timer = setTimeout(
      () => {
        this.timer = null;
        void (busy ? this.poll() : this.refresh());
      },
      busy ? POLL_MS : IDLE_MS,
    );
  }

  /** Nothing running here: look now and then for jobs another client (`lms get`, a script) started. */
  private async refresh(): Promise<void> {
    try {
      const jobs = (await listJobs()).reverse();
      if (this.stopped) return;
      const known = new Set(this.jobs.map((job) => job.job_id));
      if (jobs.some((job) => !known.has(job.job_id) || job.status === 'downloading')) this.jobs = jobs;
    } catch {
      // the server is away for a moment: try again later
    }
    this.schedule();
  }

  private async poll(): Promise<void> {
    const running = this.jobs.filter((job) => job.status === 'downloading');
    const fresh = await Promise.allSettled(running.map((job) => jobStatus(job.job_id)));
    if (this.stopped) return;
    fresh.forEach((result, i) => {
      if (result.status === 'fulfilled') this.put(result.value);
      else if (result.reason instanceof ApiError && result.reason.status === 404) this.drop(running[i].job_id);
    });
    this.schedule();
  }
}

export function messageOf(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  return err instanceof Error ? err.message : String(err);
}
