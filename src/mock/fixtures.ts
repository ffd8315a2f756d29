// Provider-shaped response bodies for the mock: OpenAI (chat, responses, embeddings, models),
// Anthropic (messages) and Gemini (generateContent) JSON and SSE payloads. With a `MockUsage` (usage.ts) they
// carry those figures in each provider's own usage shape (cache and reasoning tokens included); without one,
// the historical fixed usage.
import * as U from "./usage.js"

export const REPLY = "Hello from the mock provider."
export const REPLY_DELTAS = ["Hello", " from", " the", " mock", " provider", "."]
export const PROMPT_TOKENS = 10
export const COMPLETION_TOKENS = REPLY_DELTAS.length
export const CREATED = 1_700_000_000

type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

const sse = (data: Json): string => "data: " + JSON.stringify(data) + "\n\n"
const sseEvent = (event: string, data: Json): string => "event: " + event + "\ndata: " + JSON.stringify(data) + "\n\n"

// ---------- errors ----------

export const openaiAuthError = Buffer.from(
  JSON.stringify({
    error: { message: "Incorrect API key provided", type: "invalid_request_error", code: "invalid_api_key" }
  })
)
export const anthropicAuthError = Buffer.from(
  JSON.stringify({ type: "error", error: { type: "authentication_error", message: "invalid x-api-key" } })
)
export const geminiAuthError = Buffer.from(
  JSON.stringify({ error: { code: 401, message: "API key not valid", status: "UNAUTHENTICATED" } })
)
export const jsonError = (message: string, type = "invalid_request_error"): Buffer =>
  Buffer.from(JSON.stringify({ error: { message, type } }))

// ---------- OpenAI chat completions ----------

export const chatCompletion = (model: string, usage?: U.MockUsage): Buffer =>
  Buffer.from(
    JSON.stringify({
      id: "chatcmpl-mock",
      object: "chat.completion",
      created: CREATED,
      model,
      system_fingerprint: "fp_mock",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: REPLY, refusal: null, annotations: [] },
          logprobs: null,
          finish_reason: "stop"
        }
      ],
      usage: usage === undefined ? chatUsage : U.openaiChatUsage(usage)
    })
  )

const chatUsage: Json = {
  prompt_tokens: PROMPT_TOKENS,
  completion_tokens: COMPLETION_TOKENS,
  total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS
}

/** As the API streams: the usage chunk (choices empty) and `"usage":null` elsewhere only with `include_usage`. */
export const chatCompletionStream = (model: string, includeUsage: boolean, usage?: U.MockUsage): string[] => {
  const chunk = (delta: Json, finish: string | null): string =>
    sse({
      id: "chatcmpl-mock",
      object: "chat.completion.chunk",
      created: CREATED,
      model,
      system_fingerprint: "fp_mock",
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage ? { usage: null } : {})
    })
  const out = [chunk({ role: "assistant", content: "", refusal: null }, null)]
  for (const d of REPLY_DELTAS) out.push(chunk({ content: d }, null))
  out.push(chunk({}, "stop"))
  if (includeUsage) {
    out.push(
      sse({
        id: "chatcmpl-mock",
        object: "chat.completion.chunk",
        created: CREATED,
        model,
        system_fingerprint: "fp_mock",
        choices: [],
        usage: usage === undefined ? chatUsage : U.openaiChatUsage(usage)
      })
    )
  }
  out.push("data: [DONE]\n\n")
  return out
}

// ---------- OpenAI responses ----------

const responseUsage = {
  input_tokens: PROMPT_TOKENS,
  input_tokens_details: { cached_tokens: 0 },
  output_tokens: COMPLETION_TOKENS,
  output_tokens_details: { reasoning_tokens: 0 },
  total_tokens: PROMPT_TOKENS + COMPLETION_TOKENS
}

const outputText = (text: string): Json => ({ type: "output_text", text, annotations: [], logprobs: [] })

const messageItem = (status: string, content: Json[]): Json => ({
  id: "msg_mock",
  type: "message",
  status,
  role: "assistant",
  content
})

const responseObject = (model: string, status: string, output: Json[], usage: Json): { [key: string]: Json } => ({
  id: "resp_mock",
  object: "response",
  created_at: CREATED,
  status,
  background: false,
  error: null,
  incomplete_details: null,
  instructions: null,
  max_output_tokens: null,
  model,
  output,
  parallel_tool_calls: true,
  previous_response_id: null,
  reasoning: { effort: null, summary: null },
  store: true,
  temperature: 1,
  text: { format: { type: "text" } },
  tool_choice: "auto",
  tools: [],
  top_p: 1,
  truncation: "disabled",
  usage,
  user: null,
  metadata: {}
})

export const responsesResponse = (model: string, usage?: U.MockUsage): Buffer =>
  Buffer.from(
    JSON.stringify(
      responseObject(
        model,
        "completed",
        [messageItem("completed", [outputText(REPLY)])],
        usage === undefined ? responseUsage : U.openaiResponsesUsage(usage)
      )
    )
  )

export const responsesStream = (model: string, usage?: U.MockUsage): string[] => {
  let seq = 0
  const ev = (type: string, body: { [key: string]: Json }): string =>
    sseEvent(type, { type, sequence_number: seq++, ...body })
  const ids = { item_id: "msg_mock", output_index: 0, content_index: 0 }
  const out = [
    ev("response.created", { response: responseObject(model, "in_progress", [], null) }),
    ev("response.in_progress", { response: responseObject(model, "in_progress", [], null) }),
    ev("response.output_item.added", { output_index: 0, item: messageItem("in_progress", []) }),
    ev("response.content_part.added", { ...ids, part: outputText("") })
  ]
  for (const d of REPLY_DELTAS) out.push(ev("response.output_text.delta", { ...ids, delta: d, logprobs: [] }))
  out.push(
    ev("response.output_text.done", { ...ids, text: REPLY, logprobs: [] }),
    ev("response.content_part.done", { ...ids, part: outputText(REPLY) }),
    ev("response.output_item.done", { output_index: 0, item: messageItem("completed", [outputText(REPLY)]) }),
    ev("response.completed", {
      response: responseObject(
        model,
        "completed",
        [messageItem("completed", [outputText(REPLY)])],
        usage === undefined ? responseUsage : U.openaiResponsesUsage(usage)
      )
    })
  )
  return out
}

// ---------- OpenAI embeddings and models ----------

/** Embedding vector for input `index` (deterministic, small values). */
const vector = (index: number, dims: number): Float32Array => {
  const v = new Float32Array(dims)
  for (let i = 0; i < dims; i++) v[i] = Math.fround(((index * 31 + i * 7) % 97) / 97 - 0.5)
  return v
}

export const embeddings = (
  model: string,
  count: number,
  dims: number,
  base64: boolean,
  usage?: U.MockUsage
): Buffer => {
  const data: Json[] = []
  for (let i = 0; i < count; i++) {
    const v = vector(i, dims)
    const embedding = base64 ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") : Array.from(v)
    data.push({ object: "embedding", index: i, embedding })
  }
  return Buffer.from(
    JSON.stringify({
      object: "list",
      data,
      model,
      usage:
        usage === undefined ? { prompt_tokens: count * 4, total_tokens: count * 4 } : U.openaiEmbeddingsUsage(usage)
    })
  )
}

export const OPENAI_MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1", "text-embedding-3-small"]

const openaiModel = (id: string): Json => ({ id, object: "model", created: CREATED, owned_by: "openproxy-mock" })

export const openaiModelList = Buffer.from(JSON.stringify({ object: "list", data: OPENAI_MODELS.map(openaiModel) }))
export const openaiModelGet = (id: string): Buffer => Buffer.from(JSON.stringify(openaiModel(id)))

export const ANTHROPIC_MODELS = ["claude-sonnet-4-5", "claude-haiku-4-5"]

const anthropicModel = (id: string): Json => ({
  type: "model",
  id,
  display_name: id,
  created_at: "2025-01-01T00:00:00Z"
})

export const anthropicModelList = Buffer.from(
  JSON.stringify({
    data: ANTHROPIC_MODELS.map(anthropicModel),
    has_more: false,
    first_id: ANTHROPIC_MODELS[0],
    last_id: ANTHROPIC_MODELS[ANTHROPIC_MODELS.length - 1]
  })
)
export const anthropicModelGet = (id: string): Buffer => Buffer.from(JSON.stringify(anthropicModel(id)))

// ---------- Anthropic messages ----------

export const anthropicMessage = (model: string, usage?: U.MockUsage): Buffer =>
  Buffer.from(
    JSON.stringify({
      id: "msg_mock",
      type: "message",
      role: "assistant",
      model,
      content:
        usage !== undefined && usage.reasoning > 0
          ? [
              { type: "thinking", thinking: THINKING, signature: SIGNATURE },
              { type: "text", text: REPLY }
            ]
          : [{ type: "text", text: REPLY }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage:
        usage === undefined
          ? { input_tokens: PROMPT_TOKENS, output_tokens: COMPLETION_TOKENS }
          : U.anthropicUsage(usage)
    })
  )

const THINKING = "The user greets me; I answer briefly."
const SIGNATURE = "EqQBCgIYAhIMmockSignature"

/** With usage figures that include reasoning, a thinking block comes first (index 0) and the text is index 1. */
export const anthropicStream = (model: string, usage?: U.MockUsage): string[] => {
  const thinking = usage !== undefined && usage.reasoning > 0
  const text = thinking ? 1 : 0
  const out = [
    sseEvent("message_start", {
      type: "message_start",
      message: {
        id: "msg_mock",
        type: "message",
        role: "assistant",
        model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: usage === undefined ? { input_tokens: PROMPT_TOKENS, output_tokens: 1 } : U.anthropicUsage(usage, 1)
      }
    })
  ]
  if (thinking) {
    out.push(
      sseEvent("content_block_start", {
        type: "content_block_start",
        index: 0,
        content_block: { type: "thinking", thinking: "", signature: "" }
      }),
      sseEvent("content_block_delta", {
        type: "content_block_delta",
        index: 0,
        delta: { type: "thinking_delta", thinking: THINKING }
      }),
      sseEvent("content_block_delta", {
        type: "content_block_delta",
        index: 0,
        delta: { type: "signature_delta", signature: SIGNATURE }
      }),
      sseEvent("content_block_stop", { type: "content_block_stop", index: 0 })
    )
  }
  out.push(
    sseEvent("content_block_start", {
      type: "content_block_start",
      index: text,
      content_block: { type: "text", text: "" }
    }),
    sseEvent("ping", { type: "ping" })
  )
  for (const d of REPLY_DELTAS) {
    out.push(
      sseEvent("content_block_delta", {
        type: "content_block_delta",
        index: text,
        delta: { type: "text_delta", text: d }
      })
    )
  }
  out.push(
    sseEvent("content_block_stop", { type: "content_block_stop", index: text }),
    sseEvent("message_delta", {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: usage === undefined ? { output_tokens: COMPLETION_TOKENS } : U.anthropicDeltaUsage(usage)
    }),
    sseEvent("message_stop", { type: "message_stop" })
  )
  return out
}

export const anthropicCountTokens = Buffer.from(JSON.stringify({ input_tokens: PROMPT_TOKENS }))

// ---------- Gemini ----------

const geminiChunk = (model: string, text: string, finish: boolean, tokens: number, usage?: U.MockUsage): Json => ({
  candidates: [
    {
      content: { parts: [{ text }], role: "model" },
      ...(finish ? { finishReason: "STOP" } : {}),
      index: 0
    }
  ],
  usageMetadata:
    usage === undefined
      ? { promptTokenCount: PROMPT_TOKENS, candidatesTokenCount: tokens, totalTokenCount: PROMPT_TOKENS + tokens }
      : U.geminiUsage(usage, tokens),
  modelVersion: model,
  responseId: "mock-response"
})

export const geminiResponse = (model: string, usage?: U.MockUsage): Buffer =>
  Buffer.from(
    JSON.stringify(
      geminiChunk(model, REPLY, true, usage === undefined ? COMPLETION_TOKENS : usage.output - usage.reasoning, usage)
    )
  )

/** Cumulative usageMetadata in every chunk; with figures, the visible output grows to its total by the last one. */
export const geminiStream = (model: string, usage?: U.MockUsage): string[] =>
  REPLY_DELTAS.map((d, i) => {
    const last = i === REPLY_DELTAS.length - 1
    const tokens =
      usage === undefined
        ? i + 1
        : last
          ? usage.output - usage.reasoning
          : Math.floor(((usage.output - usage.reasoning) * (i + 1)) / REPLY_DELTAS.length)
    return sse(geminiChunk(model, d, last, tokens, usage)).replace(/\n\n$/, "\r\n\r\n")
  })

export const GEMINI_MODELS = ["gemini-2.5-flash", "gemini-2.5-pro"]

export const geminiModelList = Buffer.from(
  JSON.stringify({
    models: GEMINI_MODELS.map((m) => ({
      name: "models/" + m,
      displayName: m,
      supportedGenerationMethods: ["generateContent", "countTokens"]
    }))
  })
)

// ---------- OpenAI Realtime ----------

/**
 * The server events answering a `response.create` (GA event names): response.created, the text deltas, the item
 * and response.done with `usage`. `transcriptRepeat` makes the message (and so response.done) larger, e.g. past
 * permessage-deflate's compression threshold.
 */
export const realtimeResponse = (n: number, usage: U.MockUsage, transcriptRepeat = 1): string[] => {
  const id = `resp_mock_${n}`
  const itemId = `item_mock_${n}`
  const text = Array.from({ length: transcriptRepeat }, () => REPLY).join(" ")
  let seq = 0
  const event = (type: string, body: { [key: string]: Json }): string =>
    JSON.stringify({ type, event_id: `event_mock_${n}_${seq++}`, ...body })
  const response = (status: string, output: Json[], usageJson: Json): Json => ({
    object: "realtime.response",
    id,
    status,
    status_details: null,
    output,
    conversation_id: "conv_mock",
    output_modalities: ["text"],
    max_output_tokens: "inf",
    usage: usageJson,
    metadata: null
  })
  const item = (status: string, content: Json[]): Json => ({
    id: itemId,
    object: "realtime.item",
    type: "message",
    status,
    role: "assistant",
    content
  })
  const ids = { response_id: id, item_id: itemId, output_index: 0, content_index: 0 }
  const out = [
    event("response.created", { response: response("in_progress", [], null) }),
    event("response.output_item.added", { response_id: id, output_index: 0, item: item("in_progress", []) })
  ]
  for (let i = 0; i < transcriptRepeat; i++) {
    for (const d of REPLY_DELTAS) out.push(event("response.output_text.delta", { ...ids, delta: d }))
  }
  out.push(
    event("response.output_text.done", { ...ids, text }),
    event("response.output_item.done", {
      response_id: id,
      output_index: 0,
      item: item("completed", [{ type: "output_text", text }])
    }),
    event("response.done", {
      response: response(
        "completed",
        [item("completed", [{ type: "output_text", text }])],
        U.openaiRealtimeUsage(usage)
      )
    })
  )
  return out
}
