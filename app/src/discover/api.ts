// The Discover page's calls: search and download options (docs/http-api.md, "Searching for models") and
// LM Studio 0.4's download jobs ("Downloading models"). Public HTTP APIs only: a script can do the same.
import { getJson, sendJson } from '../lib/api';

export type ResultKind = 'catalog' | 'hf';
export type Fit = 'fullGPUOffload' | 'partialGPUOffload' | 'fitWithoutGPU' | 'willNotFit';
export type JobStatus = 'downloading' | 'paused' | 'completed' | 'failed' | 'already_downloaded';

export interface SearchResult {
  name: string;
  kind: ResultKind;
  identifier: string;
  exact: boolean;
  staff_pick: boolean;
  description: string | null;
  downloads: number | null;
  likes: number | null;
  gated: boolean;
  params: string | null;
  downloaded: boolean;
}

export interface DownloadOption {
  name: string;
  quantization: string | null;
  size_bytes: number;
  fit: Fit;
  recommended: boolean;
  download_identifier: string;
  downloaded: boolean;
}

export interface DownloadOptions {
  model: string;
  kind: ResultKind;
  identifier: string;
  options: DownloadOption[];
}

export interface DownloadJob {
  job_id: string;
  status: JobStatus;
  total_size_bytes: number;
  downloaded_bytes: number;
  bytes_per_second: number;
  estimated_completion: string | null;
  model: string;
  download_identifier: string;
  quantization: string | null;
  model_key: string | null;
  finalizing?: boolean;
  error?: { message: string; code: string } | null;
}

/** `all`: without a term, every staff pick (not only those that fit this machine). */
export async function searchModels(term: string, limit = 20, all = false): Promise<SearchResult[]> {
  const query = new URLSearchParams({ q: term, limit: String(limit), all: String(all) });
  const body = await getJson<{ results: SearchResult[] }>(`/api/v1/models/search?${query}`);
  return body.results;
}

export function downloadOptions(model: string): Promise<DownloadOptions> {
  return getJson<DownloadOptions>(`/api/v1/models/download/options?${new URLSearchParams({ model })}`);
}

export function startDownload(model: string): Promise<DownloadJob> {
  return sendJson<DownloadJob>('POST', '/api/v1/models/download', { model });
}

export function jobStatus(jobId: string): Promise<DownloadJob> {
  return getJson<DownloadJob>(`/api/v1/models/download/status/${encodeURIComponent(jobId)}`);
}

export async function listJobs(): Promise<DownloadJob[]> {
  return (await getJson<{ jobs: DownloadJob[] }>('/api/v1/models/download/jobs')).jobs;
}

export function pauseJob(jobId: string): Promise<DownloadJob> {
  return sendJson<DownloadJob>('POST', `/api/v1/models/download/${encodeURIComponent(jobId)}/pause`);
}

export function resumeJob(jobId: string): Promise<DownloadJob> {
  return sendJson<DownloadJob>('POST', `/api/v1/models/download/${encodeURIComponent(jobId)}/resume`);
}
