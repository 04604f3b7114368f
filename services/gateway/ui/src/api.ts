// The public HTTP API (docs/API.md), and nothing else. The API key lives in
// sessionStorage: this tab's session only, gone when the tab closes.

const KEY = "waybill.apiKey";

export function apiKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setApiKey(key: string | null): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface ValidationProblem {
  loc?: (string | number)[];
  msg?: string;
}

/** The API's `{"detail": ...}` as one readable sentence. */
export function describeError(status: number, body: unknown): string {
  const detail = (body as { detail?: unknown } | null)?.detail;
  let text: string;
  if (typeof detail === "string") text = detail;
  else if (Array.isArray(detail))
    text = (detail as ValidationProblem[])
      .map((p) => {
        const where = (p.loc ?? []).filter((part) => part !== "body").join(".");
        return where ? `${where}: ${p.msg ?? "invalid"}` : (p.msg ?? "invalid");
      })
      .join("; ");
  else text = "";
  const what: Record<number, string> = {
    401: "Not signed in, or the API key was refused",
    403: "For administrators only",
    404: "Not found (or not yours)",
    409: "Not possible in its current state",
    410: "Its bytes are no longer in storage",
    413: "Too large",
    422: "Invalid request",
    503: "A backing service is unavailable; try again shortly",
  };
  const head = what[status] ?? `The server answered ${status}`;
  return text ? `${head}: ${text}` : head;
}

let onUnauthorized: () => void = () => {};
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler;
}

export function authHeaders(): Record<string, string> {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

async function failure(response: Response): Promise<ApiError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.status === 401) onUnauthorized();
  return new ApiError(response.status, describeError(response.status, body));
}

export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers: {
        ...authHeaders(),
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...headers,
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError(0, "The gateway cannot be reached; check the connection and try again");
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

export const get = <T>(path: string) => request<T>("GET", path);
export const post = <T>(path: string, body?: unknown, headers?: Record<string, string>) =>
  request<T>("POST", path, body ?? {}, headers);
export const del = (path: string) => request<void>("DELETE", path);

/** One page of a list, with the total from X-Total-Count. */
export async function list<T>(path: string, limit = 50, offset = 0): Promise<{ items: T[]; total: number }> {
  const sep = path.includes("?") ? "&" : "?";
  const url = `${path}${sep}limit=${limit}&offset=${offset}`;
  let response: Response;
  try {
    response = await fetch(url, { headers: authHeaders() });
  } catch {
    throw new ApiError(0, "The gateway cannot be reached; check the connection and try again");
  }
  if (!response.ok) throw await failure(response);
  const items = (await response.json()) as T[];
  return { items, total: Number(response.headers.get("X-Total-Count") ?? items.length) };
}

/** Every item of a list, page by page. */
export async function all<T>(path: string, pageSize = 500): Promise<T[]> {
  const items: T[] = [];
  for (let offset = 0; ; offset += pageSize) {
    const page = await list<T>(path, pageSize, offset);
    items.push(...page.items);
    if (page.items.length < pageSize || items.length >= page.total) return items;
  }
}

/** A multipart upload with progress (fetch cannot report upload progress; XHR can). */
export function upload<T>(
  path: string,
  form: FormData,
  onProgress: (loaded: number, total: number) => void,
): { done: Promise<T>; abort: () => void } {
  const xhr = new XMLHttpRequest();
  const done = new Promise<T>((resolve, reject) => {
    xhr.open("POST", path);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : 0);
    xhr.onload = () => {
      let body: unknown = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body as T);
      else {
        if (xhr.status === 401) onUnauthorized();
        reject(new ApiError(xhr.status, describeError(xhr.status, body)));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "The upload failed: the gateway cannot be reached"));
    xhr.onabort = () => reject(new ApiError(0, "The upload was cancelled"));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// --- shapes (docs/API.md) -------------------------------------------------------------

export interface User {
  id: number;
  name: string;
  is_admin: boolean;
}
export interface Project {
  id: number;
  name: string;
  description: string | null;
  created_at: string;
}
export interface CatalogFile {
  id: number;
  filename: string;
  size: number;
  sha256: string;
  format: string;
  project_id: number | null;
  metadata: Record<string, unknown>;
  uploaded_at: string;
  status: string;
}
export interface OptionField {
  name: string;
  kind: "boolean" | "integer" | "text" | "choice" | "integer_pair";
  default: unknown;
  nullable: boolean;
  choices: string[] | null;
  minimum: number | null;
  maximum: number | null;
  min_length: number | null;
  max_length: number | null;
}
export interface FormatDescription {
  name: string;
  title: string;
  columns_and_filter: boolean;
  options: OptionField[];
}
export interface ExportFile {
  file_id: number | null;
  dataset_id: number | null;
  filename: string;
  status: string;
  output_name: string | null;
  size: number | null;
  error: string | null;
  warnings: string[];
  rows_read?: number | null;
  rows_written?: number | null;
  download_url: string | null;
}
export interface ExportJob {
  id: number;
  task_id: string;
  name: string;
  description: string | null;
  status: string;
  progress: number;
  total_files: number;
  processed_files: number;
  failed_files: number;
  files: ExportFile[];
  output_size: number | null;
  download_url: string | null;
  expires_at: string | null;
  error_message: string | null;
  created_at: string;
  completed_at: string | null;
  export_format: string;
  export_options: Record<string, unknown>;
  include_metadata: boolean;
  include_lineage: boolean;
  compress: boolean;
  ttl_hours: number;
}
export interface Statistics {
  total_jobs: number;
  by_status: Record<string, number>;
  by_format: Record<string, number>;
  total_size_bytes: number;
  total_files_exported: number;
}
export interface History {
  id: number;
  name: string;
  create_time: string;
  update_time: string;
  content_version: number;
}
export interface ContentItem {
  id: number;
  hid: number;
  history_id: number;
  history_content_type: "dataset" | "dataset_collection";
  name: string;
  extension: string | null;
  collection_type: string | null;
  state: string;
  visible: boolean;
  deleted: boolean;
}
export interface HistoryJob {
  id: number;
  tool_id: string;
  tool_version: string | null;
  state: string;
  create_time: string;
  inputs: { name: string; src: string; id: number }[];
  outputs: { name: string; src: string; id: number }[];
}
export interface ExportRecord {
  id: number;
  ready: boolean;
  preparing: boolean;
  up_to_date: boolean;
  has_failed: boolean;
  expired: boolean;
  status: string;
  task_uuid: string;
  create_time: string;
  expires_at: string | null;
  destination: string;
  export_metadata: {
    request_data?: { payload?: Record<string, unknown> };
    result_data?: { success?: boolean; uri?: string | null; error?: string | null } | null;
  };
}
export interface TaskResult {
  state: string;
  status: string;
  error?: string | null;
  history_id?: number;
  workflow_id?: number;
  uri?: string;
  [key: string]: unknown;
}
export interface ExtractionOutput {
  id: number;
  hid: number;
  name: string;
  state: string;
  deleted: boolean;
  history_content_type: "dataset" | "dataset_collection";
  output_name: string | null;
}
export interface ExtractionJob {
  id: number | null;
  step_type: "tool" | "input_dataset" | "input_collection";
  tool_id: string | null;
  tool_name: string | null;
  tool_version: string | null;
  checked: boolean;
  tool_version_warning: string | null;
  outputs: ExtractionOutput[];
  implicit_collection_jobs_id: number | null;
  implicit_collection_jobs_size: number | null;
}
export interface ExtractionSummary {
  history_id: number;
  warnings: string[];
  jobs: ExtractionJob[];
}
export interface ExtractionAccepted {
  id: number | null;
  task_id: string;
  status: string;
  workflow_id: number | null;
  error: string | null;
}

export function bytes(n: number | null | undefined): string {
  if (n == null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export function when(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleString() : "–";
}

/** The signed storage link a gateway route redirects to (a short-term download): the
 * redirect is followed with the key, and only its headers are read. */
export async function signedLink(path: string): Promise<string> {
  const controller = new AbortController();
  let response: Response;
  try {
    response = await fetch(path, { headers: authHeaders(), signal: controller.signal });
  } catch {
    throw new ApiError(0, "The download link could not be reached (storage unreachable)");
  }
  if (!response.ok) throw await failure(response);
  controller.abort(); // the browser downloads it itself, from the link
  return response.url;
}

/** Starts a browser download of a link (a signed storage URL or a same-origin blob). */
export function saveLink(url: string, filename = ""): void {
  const a = document.createElement("a");
  a.href = url;
  if (filename) a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
}
