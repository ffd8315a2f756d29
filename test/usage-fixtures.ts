// Realistic provider payloads for the usage library's tests, shaped after the providers' API references and
// official SDK types (openai 6, @anthropic-ai/sdk 1, @google/genai 2): cache and reasoning tokens included.
// Each comes with the normalized usage SPEC §10 expects from it, worked out by hand in the comment.
import type { Usage } from "../src/domain/usage/index.js"

const sse = (data: unknown): string => `data: ${JSON.stringify(data)}\n\n`
const sseEvent = (event: string, data: unknown): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

// ---------- OpenAI chat completions ----------

// prompt 2006 of which 1920 cached → input 86; completion 300 of which reasoning 192.
export const openaiChatJson = JSON.stringify({
  id: "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
  object: "chat.completion",
  created: 1741570283,
  model: "o3-mini-2025-01-31",
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: 'The "usage": {"prompt_tokens": 1} text is not usage.',
        refusal: null,
        annotations: []
      },
      logprobs: null,
      finish_reason: "stop"
    }
  ],
  usage: {
    prompt_tokens: 2006,
    completion_tokens: 300,
    total_tokens: 2306,
    prompt_tokens_details: { cached_tokens: 1920, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 192,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0
    }
  },
  service_tier: "default",
  system_fingerprint: "fp_44add73aab"
})
export const openaiChatUsage: Usage = { input: 86, output: 300, cacheRead: 1920, cacheWrite: 0, reasoning: 192 }

const chatChunk = (choices: unknown[], usage: unknown): Record<string, unknown> => ({
  id: "chatcmpl-AyPXx3rBbYfR",
  object: "chat.completion.chunk",
  created: 1738960000,
  model: "gpt-4o-2024-08-06",
  service_tier: "default",
  system_fingerprint: "fp_eb9dce56a8",
  choices,
  usage,
  obfuscation: "Xb2k"
})

/** A chat stream as the API sends it with `include_usage` (every chunk has `"usage":null`, then the usage chunk). */
export const openaiChatStreamParts = (withUsage: boolean): { before: string; usageChunk: string; after: string } => {
  const u = withUsage ? null : undefined
  const deltas = ["Hel", "lo", "!"]
  let before = sse(
    chatChunk(
      [{ index: 0, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }],
      u
    )
  )
  for (const d of deltas) {
    before += sse(chatChunk([{ index: 0, delta: { content: d }, logprobs: null, finish_reason: null }], u))
  }
  before += sse(chatChunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }], u))
  const usageChunk = withUsage
    ? sse(
        chatChunk([], {
          prompt_tokens: 1234,
          completion_tokens: 56,
          total_tokens: 1290,
          prompt_tokens_details: { cached_tokens: 1024, audio_tokens: 0 },
          completion_tokens_details: {
            reasoning_tokens: 0,
            audio_tokens: 0,
            accepted_prediction_tokens: 0,
            rejected_prediction_tokens: 0
          }
        })
      )
    : ""
  return { before, usageChunk, after: "data: [DONE]\n\n" }
}
export const openaiChatStreamUsage: Usage = { input: 210, output: 56, cacheRead: 1024, cacheWrite: 0, reasoning: 0 }

/** Azure OpenAI's first chunk: `choices` empty, no usage (content filter results): must never be stripped. */
export const azurePromptFilterChunk = sse({
  choices: [],
  created: 0,
  id: "",
  model: "",
  object: "",
  prompt_filter_results: [{ prompt_index: 0, content_filter_results: { hate: { filtered: false, severity: "safe" } } }]
})

// ---------- OpenAI embeddings ----------

export const openaiEmbeddingsJson = JSON.stringify({
  object: "list",
  data: [{ object: "embedding", index: 0, embedding: [0.0023064255, -0.009327292, -0.0028842222] }],
  model: "text-embedding-3-small",
  usage: { prompt_tokens: 8, total_tokens: 8 }
})
export const openaiEmbeddingsUsage: Usage = { input: 8, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 }

// ---------- OpenAI Responses ----------

// input 1500 of which 1024 cached → 476; output 800 of which reasoning 512.
const responsesUsage = {
  input_tokens: 1500,
  input_tokens_details: { cached_tokens: 1024 },
  output_tokens: 800,
  output_tokens_details: { reasoning_tokens: 512 },
  total_tokens: 2300
}
export const openaiResponsesUsage: Usage = { input: 476, output: 800, cacheRead: 1024, cacheWrite: 0, reasoning: 512 }

const responseObject = (status: string, usage: unknown, output: unknown[]): Record<string, unknown> => ({
  id: "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b",
  object: "response",
  created_at: 1741476542,
  status,
  error: null,
  incomplete_details: null,
  instructions: null,
  max_output_tokens: null,
  model: "o4-mini-2025-04-16",
  output,
  parallel_tool_calls: true,
  previous_response_id: null,
  reasoning: { effort: "medium", summary: null },
  store: true,
  temperature: 1,
  text: { format: { type: "text" } },
  tool_choice: "auto",
  tools: [],
  top_p: 1,
  truncation: "disabled",
  usage,
  user: null,
  metadata: { usage: "a metadata value named usage" }
})

const message = {
  type: "message",
  id: "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b",
  status: "completed",
  role: "assistant",
  content: [{ type: "output_text", text: "In a peaceful grove...", annotations: [] }]
}
const reasoningItem = { type: "reasoning", id: "rs_67ccd2bf", summary: [] }

export const openaiResponsesJson = JSON.stringify(responseObject("completed", responsesUsage, [reasoningItem, message]))

export const openaiResponsesStream = (): string => {
  let seq = 0
  const ev = (type: string, body: Record<string, unknown>): string =>
    sseEvent(type, { type, sequence_number: seq++, ...body })
  const ids = { item_id: message.id, output_index: 1, content_index: 0 }
  return [
    ev("response.created", { response: responseObject("in_progress", null, []) }),
    ev("response.in_progress", { response: responseObject("in_progress", null, []) }),
    ev("response.output_item.added", { output_index: 0, item: reasoningItem }),
    ev("response.output_item.done", { output_index: 0, item: reasoningItem }),
    ev("response.output_item.added", { output_index: 1, item: { ...message, status: "in_progress", content: [] } }),
    ev("response.content_part.added", { ...ids, part: { type: "output_text", text: "", annotations: [] } }),
    ev("response.output_text.delta", { ...ids, delta: "In a peaceful", logprobs: [] }),
    ev("response.output_text.delta", { ...ids, delta: " grove...", logprobs: [] }),
    ev("response.output_text.done", { ...ids, text: "In a peaceful grove...", logprobs: [] }),
    ev("response.output_item.done", { output_index: 1, item: message }),
    ev("response.completed", { response: responseObject("completed", responsesUsage, [reasoningItem, message]) })
  ].join("")
}

// ---------- Anthropic ----------

// input 12 (excludes caches), cache write 2048, cache read 4096, output 503 of which thinking 211.
export const anthropicJson = JSON.stringify({
  id: "msg_013Zva2CMHLNnXjNJJKqJ2EF",
  type: "message",
  role: "assistant",
  model: "claude-sonnet-4-5-20250929",
  content: [
    {
      type: "thinking",
      thinking: "Let me think about usage.",
      signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
    },
    { type: "text", text: "Hi! My name is Claude." }
  ],
  stop_reason: "end_turn",
  stop_sequence: null,
  usage: {
    input_tokens: 12,
    cache_creation_input_tokens: 2048,
    cache_read_input_tokens: 4096,
    cache_creation: { ephemeral_5m_input_tokens: 2048, ephemeral_1h_input_tokens: 0 },
    output_tokens: 503,
    output_tokens_details: { thinking_tokens: 211 },
    server_tool_use: null,
    service_tier: "standard"
  }
})
export const anthropicUsage: Usage = { input: 12, output: 503, cacheRead: 4096, cacheWrite: 2048, reasoning: 211 }

/**
 * An Anthropic stream: `message_start` with the input side (output_tokens 1 so far), thinking and text deltas,
 * `message_delta` with the cumulative output (`full`: also the input fields again, as newer API versions send).
 * input 472, cache read 1800, cache write 0, output 345 of which thinking 120.
 */
export const anthropicStream = (full: boolean): string => {
  const start = {
    input_tokens: 472,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 1800,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    output_tokens: 1,
    service_tier: "standard"
  }
  const delta = full
    ? {
        input_tokens: 472,
        cache_creation_input_tokens: null,
        cache_read_input_tokens: 1800,
        output_tokens: 345,
        output_tokens_details: { thinking_tokens: 120 }
      }
    : { output_tokens: 345, output_tokens_details: { thinking_tokens: 120 } }
  return [
    sseEvent("message_start", {
      type: "message_start",
      message: {
        id: "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
        type: "message",
        role: "assistant",
        content: [],
        model: "claude-opus-4-1-20250805",
        stop_reason: null,
        stop_sequence: null,
        usage: start
      }
    }),
    sseEvent("content_block_start", {
      type: "content_block_start",
      index: 0,
      content_block: { type: "thinking", thinking: "", signature: "" }
    }),
    sseEvent("ping", { type: "ping" }),
    sseEvent("content_block_delta", {
      type: "content_block_delta",
      index: 0,
      delta: { type: "thinking_delta", thinking: "Let me solve this" }
    }),
    sseEvent("content_block_delta", {
      type: "content_block_delta",
      index: 0,
      delta: { type: "signature_delta", signature: "EqQBCgIYAhIM" }
    }),
    sseEvent("content_block_stop", { type: "content_block_stop", index: 0 }),
    sseEvent("content_block_start", {
      type: "content_block_start",
      index: 1,
      content_block: { type: "text", text: "" }
    }),
    sseEvent("content_block_delta", {
      type: "content_block_delta",
      index: 1,
      delta: { type: "text_delta", text: "27 * 453 = 12231" }
    }),
    sseEvent("content_block_stop", { type: "content_block_stop", index: 1 }),
    sseEvent("message_delta", {
      type: "message_delta",
      delta: { stop_reason: "end_turn", stop_sequence: null },
      usage: delta
    }),
    sseEvent("message_stop", { type: "message_stop" })
  ].join("")
}
export const anthropicStreamUsage: Usage = { input: 472, output: 345, cacheRead: 1800, cacheWrite: 0, reasoning: 120 }

// ---------- Gemini ----------

// prompt 5120 of which 4096 cached, tool-use prompt 30 → input 1054; output 210 + thoughts 500 = 710.
export const geminiJson = JSON.stringify({
  candidates: [
    { content: { parts: [{ text: "A usageMetadata-free answer." }], role: "model" }, finishReason: "STOP", index: 0 }
  ],
  usageMetadata: {
    promptTokenCount: 5120,
    candidatesTokenCount: 210,
    totalTokenCount: 5860,
    cachedContentTokenCount: 4096,
    toolUsePromptTokenCount: 30,
    promptTokensDetails: [{ modality: "TEXT", tokenCount: 5120 }],
    cacheTokensDetails: [{ modality: "TEXT", tokenCount: 4096 }],
    thoughtsTokenCount: 500
  },
  modelVersion: "gemini-2.5-flash",
  responseId: "mAitaLmkHPPlz7IPvtfUqQ4"
})
export const geminiUsage: Usage = { input: 1054, output: 710, cacheRead: 4096, cacheWrite: 0, reasoning: 500 }

/** `streamGenerateContent?alt=sse`: cumulative usageMetadata in every chunk (CRLF line ends, as Gemini sends). */
export const geminiStreamEvents = (): unknown[] => {
  const texts = ["The", " sky is", " blue."]
  return texts.map((t, i) => ({
    candidates: [
      {
        content: { parts: [{ text: t }], role: "model" },
        ...(i === texts.length - 1 ? { finishReason: "STOP" } : {}),
        index: 0
      }
    ],
    usageMetadata: {
      promptTokenCount: 300,
      candidatesTokenCount: 4 * (i + 1),
      totalTokenCount: 300 + 4 * (i + 1) + 64,
      cachedContentTokenCount: 256,
      promptTokensDetails: [{ modality: "TEXT", tokenCount: 300 }],
      thoughtsTokenCount: 64
    },
    modelVersion: "gemini-2.5-pro",
    responseId: "stream-1"
  }))
}
export const geminiStream = (): string =>
  geminiStreamEvents()
    .map((e) => `data: ${JSON.stringify(e)}\r\n\r\n`)
    .join("")
export const geminiStreamUsage: Usage = { input: 44, output: 76, cacheRead: 256, cacheWrite: 0, reasoning: 64 }

// ---------- OpenAI Realtime ----------

// input 900 of which 640 cached → 260; output 300.
export const realtimeResponseDone = (id: string): Record<string, unknown> => ({
  type: "response.done",
  event_id: `event_${id}`,
  response: {
    object: "realtime.response",
    id: `resp_${id}`,
    status: "completed",
    status_details: null,
    output: [
      {
        id: `item_${id}`,
        object: "realtime.item",
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_audio", transcript: "Hello, how can I help you today? ".repeat(40) }]
      }
    ],
    conversation_id: "conv_C9Xc",
    output_modalities: ["audio"],
    max_output_tokens: "inf",
    audio: { output: { format: { type: "audio/pcm", rate: 24000 }, voice: "marin" } },
    usage: {
      total_tokens: 1200,
      input_tokens: 900,
      output_tokens: 300,
      input_token_details: {
        text_tokens: 500,
        audio_tokens: 400,
        image_tokens: 0,
        cached_tokens: 640,
        cached_tokens_details: { text_tokens: 512, audio_tokens: 128, image_tokens: 0 }
      },
      output_token_details: { text_tokens: 60, audio_tokens: 240 }
    },
    metadata: null
  }
})
export const realtimeResponseUsage: Usage = { input: 260, output: 300, cacheRead: 640, cacheWrite: 0, reasoning: 0 }

/** Cuts `buf` at the given points (any order, duplicates and out-of-range values allowed). */
export const split = (buf: Buffer, cuts: number[]): Buffer[] => {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(buf.length, c))))].sort((a, b) => a - b)
  const out: Buffer[] = []
  let from = 0
  for (const p of points) {
    out.push(buf.subarray(from, p))
    from = p
  }
  out.push(buf.subarray(from))
  return out
}
