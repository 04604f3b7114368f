// Live progress: the Server-Sent Events stream of a job or task
// (GET .../stream, `data:` the same JSON as its GET), read with fetch() because
// EventSource cannot send the API key header. Where the stream is not there (404/405)
// or drops again and again, the GET is polled once a second instead.

import { ApiError, authHeaders, request } from "./api";

export type LiveMode = "stream" | "poll";

export interface WatchOptions<T> {
  streamPath: string;
  pollPath: string;
  /** The resource from a stream event's JSON (null: fetch the GET instead). */
  fromEvent?: (data: unknown) => T | null;
  isDone: (value: T) => boolean;
  onUpdate: (value: T) => void;
  onError: (error: ApiError) => void;
  onMode?: (mode: LiveMode) => void;
}

const POLL_MS = 1000;
const MAX_DROPS = 3; // streams that end early in a row, with no event, before polling

export function watch<T>(options: WatchOptions<T>): () => void {
  const controller = new AbortController();
  let stopped = false;
  let timer: number | undefined;
  const stop = () => {
    stopped = true;
    controller.abort();
    if (timer !== undefined) clearTimeout(timer);
  };

  const apply = (value: T): boolean => {
    options.onUpdate(value);
    if (options.isDone(value)) {
      stop();
      return true;
    }
    return false;
  };

  const poll = async () => {
    options.onMode?.("poll");
    while (!stopped) {
      try {
        if (apply(await request<T>("GET", options.pollPath))) return;
      } catch (error) {
        const apiError = error instanceof ApiError ? error : new ApiError(0, String(error));
        options.onError(apiError);
        if (apiError.status === 404 || apiError.status === 401) return stop();
      }
      await new Promise<void>((resolve) => {
        timer = window.setTimeout(resolve, POLL_MS);
      });
    }
  };

  const stream = async () => {
    let lastEventId: string | null = null;
    let drops = 0;
    while (!stopped) {
      let sawEvent = false;
      try {
        const response = await fetch(options.streamPath, {
          headers: {
            ...authHeaders(),
            Accept: "text/event-stream",
            ...(lastEventId ? { "Last-Event-ID": lastEventId } : {}),
          },
          signal: controller.signal,
        });
        const type = response.headers.get("Content-Type") ?? "";
        if (!response.ok || !type.startsWith("text/event-stream") || !response.body) {
          return poll(); // no stream here (404/405 before it landed, or not ours): the GET says
        }
        options.onMode?.("stream");
        for await (const event of readEvents(response.body)) {
          if (event.id) lastEventId = event.id;
          if (!event.data) continue;
          sawEvent = true;
          const fromEvent = options.fromEvent?.(JSON.parse(event.data)) ?? null;
          const value: T = fromEvent ?? (await request<T>("GET", options.pollPath));
          if (apply(value)) return;
        }
      } catch (error) {
        if (stopped) return;
        if (error instanceof ApiError) {
          options.onError(error);
          if (error.status === 404) return stop();
        }
      }
      if (stopped) return;
      drops = sawEvent ? 0 : drops + 1;
      if (drops >= MAX_DROPS) return poll();
      await new Promise((resolve) => setTimeout(resolve, 250 * drops));
    }
  };

  void stream();
  return stop;
}

export interface SseEvent {
  id: string | null;
  event: string;
  data: string;
}

/** Server-Sent Events from a byte stream (the WHATWG parsing rules, minus retry). */
export async function* readEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data: string[] = [];
  let id: string | null = null;
  let event = "message";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
        if (line === "") {
          if (data.length) yield { id, event, data: data.join("\n") };
          data = [];
          event = "message";
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "id") id = text;
        else if (field === "event") event = text;
      }
    }
  } finally {
    reader.releaseLock();
  }
}
