// Turning the create dialog's fields into a POST /api/data-export/jobs body.
import type { FormatDescription, OptionField } from "./api";
import type { ConditionRow } from "./components/FilterEditor.vue";

/** A typed value: a number when it reads as one, true/false as booleans, else text
 * ("text:…" forces text, for a text column holding digits). */
export function typedValue(raw: string): string | number | boolean {
  const text = raw.trim();
  if (text.startsWith("text:")) return text.slice(5);
  if (text === "true" || text === "false") return text === "true";
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return raw;
}

export function filterFrom(rows: ConditionRow[], combine: "all" | "any"): unknown {
  const conditions = rows.map((row) => {
    if (row.op === "is_null" || row.op === "not_null") return { column: row.column, op: row.op };
    if (row.op === "in")
      return { column: row.column, op: "in", value: row.value.split(",").map((v) => typedValue(v)) };
    if (row.op === "contains") return { column: row.column, op: "contains", value: row.value };
    return { column: row.column, op: row.op, value: typedValue(row.value) };
  });
  if (!conditions.length) return undefined;
  return conditions.length === 1 ? conditions[0] : { [combine]: conditions };
}

/** The form's value of an option, as the API takes it ("\t" typed for a tab). */
export function optionValue(field: OptionField, raw: unknown): unknown {
  if (field.kind === "text" && typeof raw === "string" && field.max_length === 1)
    return raw === "\\t" ? "\t" : raw;
  if (field.kind === "integer") return raw === "" || raw === null ? field.default : Number(raw);
  if (field.kind === "integer_pair") {
    const [row, col] = raw as [unknown, unknown];
    return row === "" || col === "" || row == null || col == null ? null : [Number(row), Number(col)];
  }
  return raw;
}

export function formValue(field: OptionField): unknown {
  if (field.kind === "integer_pair") return (field.default as [number, number] | null) ?? ["", ""];
  if (field.kind === "text" && field.default === "\t") return "\\t";
  return field.default;
}

/** Only the options that differ from their defaults. */
export function exportOptions(
  format: FormatDescription,
  values: Record<string, unknown>,
  columns: string[],
  filter: unknown,
): Record<string, unknown> {
  const options: Record<string, unknown> = {};
  for (const field of format.options) {
    const value = optionValue(field, values[field.name]);
    if (JSON.stringify(value) !== JSON.stringify(field.default)) options[field.name] = value;
  }
  if (format.columns_and_filter) {
    if (columns.length) options.columns = columns;
    if (filter !== undefined) options.filter = filter;
  }
  return options;
}

/** The header of a CSV or TSV file, from its first line. */
export function headerColumns(firstLine: string, delimiter: string): string[] {
  const columns: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < firstLine.length; i++) {
    const c = firstLine[i];
    if (quoted) {
      if (c === '"' && firstLine[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === "") quoted = true;
    else if (c === delimiter) {
      columns.push(field);
      field = "";
    } else field += c;
  }
  columns.push(field);
  return columns.map((c) => c.trim()).filter((c) => c !== "");
}
