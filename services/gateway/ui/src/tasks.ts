// Following an asynchronous task (history export, import, extraction) to its end:
// GET /api/tasks/{id}/stream when the gateway has it, else /result once a second.
import type { TaskResult } from "./api";
import { watch, type LiveMode } from "./live";

export const TASK_DONE = ["SUCCESS", "FAILURE"];

export function followTask(
  taskId: string,
  onUpdate: (result: TaskResult) => void,
  onError: (message: string) => void,
  onMode?: (mode: LiveMode) => void,
): () => void {
  return watch<TaskResult>({
    streamPath: `/api/tasks/${taskId}/stream`,
    pollPath: `/api/tasks/${taskId}/result`,
    // A stream event in the result's shape is used as it is; any other shape means
    // "something changed", and the result is read.
    fromEvent: (data) =>
      data && typeof data === "object" && "state" in data ? (data as TaskResult) : null,
    isDone: (result) => TASK_DONE.includes(result.state),
    onUpdate,
    onError: (e) => onError(e.message),
    onMode,
  });
}
