// Normalized token usage (SPEC §10) and the per-provider rules that produce it. `input`, `cacheRead`,
// `cacheWrite` and `output` are disjoint and add up to what the provider bills; `output` includes the
// reasoning tokens and `reasoning` reports that part again. Pure functions over parsed JSON: no I/O.

export interface Usage {
  /** prompt tokens not read from a cache (nor written to one: Anthropic bills cache writes apart) */
  input: number
  /** generated tokens, reasoning included */
  output: number
  cacheRead: number
  cacheWrite: number
  /** the reasoning ("thinking") part of `output`, reported again */
  reasoning: number
}

/** How a usage object is written: OpenAI (chat, completions, embeddings, Responses, Realtime), Anthropic, Gemini. */
export type UsageDialect = "openai" | "anthropic" | "gemini"

export const zeroUsage = (): Usage => ({ input: 0, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 })

export const addUsage = (a: Usage, b: Usage): Usage => ({
  input: a.input + b.input,
  output: a.output + b.output,
  cacheRead: a.cacheRead + b.cacheRead,
  cacheWrite: a.cacheWrite + b.cacheWrite,
  reasoning: a.reasoning + b.reasoning
})

type Obj = Record<string, unknown>

const obj = (v: unknown): Obj | undefined =>
  v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined

/** A token count: a non-negative finite number (floored); anything else (null, missing, a string) is 0. */
const count = (v: unknown): number => (typeof v === "number" && v > 0 && Number.isFinite(v) ? Math.floor(v) : 0)

/**
 * OpenAI: chat/completions/embeddings (`prompt_tokens`, `completion_tokens`, `prompt_tokens_details.cached_tokens`,
 * `completion_tokens_details.reasoning_tokens`), Responses (`input_tokens`, `output_tokens`,
 * `input_tokens_details`, `output_tokens_details`) and Realtime (`input_token_details`, `output_token_details`).
 * The prompt count includes the cached tokens, so `input` is the difference. OpenAI has no cache-write charge.
 */
export const fromOpenAI = (u: Obj): Usage => {
  const prompt = count(u.prompt_tokens ?? u.input_tokens)
  const completion = count(u.completion_tokens ?? u.output_tokens)
  const inDetails = obj(u.prompt_tokens_details ?? u.input_tokens_details ?? u.input_token_details)
  const outDetails = obj(u.completion_tokens_details ?? u.output_tokens_details ?? u.output_token_details)
  const cached = Math.min(count(inDetails?.cached_tokens), prompt)
  return {
    input: prompt - cached,
    output: completion,
    cacheRead: cached,
    cacheWrite: 0,
    reasoning: Math.min(count(outDetails?.reasoning_tokens), completion)
  }
}

/**
 * Anthropic: `input_tokens` already excludes `cache_creation_input_tokens` and `cache_read_input_tokens`;
 * `output_tokens` includes thinking, whose count (when the API reports it) is `output_tokens_details.thinking_tokens`.
 */
export const fromAnthropic = (u: Obj): Usage => {
  const output = count(u.output_tokens)
  return {
    input: count(u.input_tokens),
    output,
    cacheRead: count(u.cache_read_input_tokens),
    cacheWrite: count(u.cache_creation_input_tokens),
    reasoning: Math.min(count(obj(u.output_tokens_details)?.thinking_tokens), output)
  }
}

/**
 * Anthropic streams: `message_start.message.usage`, then `message_delta.usage` whose fields are cumulative.
 * Merged per field, the later value wins; a null or missing field keeps the earlier one.
 */
export const mergeAnthropic = (into: Obj, next: Obj): Obj => {
  for (const k of Object.keys(next)) {
    const v = next[k]
    if (v !== null && v !== undefined) into[k] = v
  }
  return into
}

/**
 * Gemini `usageMetadata`: `promptTokenCount` includes `cachedContentTokenCount`; tool-use prompt tokens
 * (`toolUsePromptTokenCount`, results of tool runs fed back to the model) are billed as input; output is
 * `candidatesTokenCount + thoughtsTokenCount` and reasoning is `thoughtsTokenCount`. Gemini has no cache-write charge
 * on a request (context caches are created and billed by their own API).
 */
export const fromGemini = (u: Obj): Usage => {
  const prompt = count(u.promptTokenCount)
  const cached = Math.min(count(u.cachedContentTokenCount), prompt)
  const thoughts = count(u.thoughtsTokenCount)
  return {
    input: prompt - cached + count(u.toolUsePromptTokenCount),
    output: count(u.candidatesTokenCount) + thoughts,
    cacheRead: cached,
    cacheWrite: 0,
    reasoning: thoughts
  }
}

export const fromDialect = (dialect: UsageDialect, u: Obj): Usage =>
  dialect === "openai" ? fromOpenAI(u) : dialect === "anthropic" ? fromAnthropic(u) : fromGemini(u)

/** Parses a usage object's JSON text; undefined when it is not a JSON object. */
export const parseObject = (text: string): Obj | undefined => {
  try {
    return obj(JSON.parse(text))
  } catch {
    return undefined
  }
}

const MODEL_LABEL = /^[A-Za-z0-9._:/@+-]{1,100}$/

/**
 * A model name as a metric label: a short printable token (letters, digits and `._:/@+-`, at most 100 characters;
 * Gemini's `models/` prefix dropped), else "unknown". Keeps label cardinality bounded whatever a client sends.
 */
export const modelLabel = (raw: string | undefined): string => {
  if (raw === undefined) return "unknown"
  // The same few names come again and again (each exchange's request and response name, which differ: a
  // one-entry memory missed every time): answers are kept, up to LABELS_KEPT names (then forgotten at once).
  let label = labels.get(raw)
  if (label !== undefined) return label
  const name = raw.startsWith("models/") ? raw.slice(7) : raw
  label = MODEL_LABEL.test(name) ? name : "unknown"
  if (labels.size >= LABELS_KEPT) labels.clear()
  labels.set(raw, label)
  return label
}
const LABELS_KEPT = 256
const labels = new Map<string, string>()
