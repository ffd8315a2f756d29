// Usage figures the mock provider reports, chosen by the client so tests know them: the `x-mock-usage` request
// header (or `mock_usage` query parameter, for WebSocket clients that cannot set headers), e.g.
// `input=1200,output=300,cache_read=1024,cache_write=64,reasoning=120`. The figures are the normalized ones of
// SPEC §10 (input excludes cache reads and writes; output includes reasoning), and each provider shape below is
// written so that it normalizes back to exactly them. OpenAI and Gemini have no cache-write charge: their shapes
// ignore `cache_write`. Without the header the mock keeps its historical fixed usage (10 prompt, 6 completion).

export interface MockUsage {
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
  reasoning: number
}

const FIELDS: Record<string, keyof MockUsage> = {
  input: "input",
  output: "output",
  cache_read: "cacheRead",
  cache_write: "cacheWrite",
  reasoning: "reasoning"
}

/** Parses the control value; undefined when absent or malformed (a malformed one is ignored, not an error). */
export const parseMockUsage = (value: string | null | undefined): MockUsage | undefined => {
  if (value === undefined || value === null || value.trim() === "") return undefined
  const u: MockUsage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, reasoning: 0 }
  for (const pair of value.split(",")) {
    const eq = pair.indexOf("=")
    if (eq < 0) return undefined
    const field = FIELDS[pair.slice(0, eq).trim()]
    const n = Number(pair.slice(eq + 1).trim())
    if (field === undefined || !Number.isSafeInteger(n) || n < 0) return undefined
    u[field] = n
  }
  if (u.reasoning > u.output) return undefined
  return u
}

type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

/** OpenAI chat/completions: prompt_tokens includes the cached tokens; completion_tokens includes reasoning. */
export const openaiChatUsage = (u: MockUsage): Json => ({
  prompt_tokens: u.input + u.cacheRead,
  completion_tokens: u.output,
  total_tokens: u.input + u.cacheRead + u.output,
  prompt_tokens_details: { cached_tokens: u.cacheRead, audio_tokens: 0 },
  completion_tokens_details: {
    reasoning_tokens: u.reasoning,
    audio_tokens: 0,
    accepted_prediction_tokens: 0,
    rejected_prediction_tokens: 0
  }
})

/** OpenAI Responses. */
export const openaiResponsesUsage = (u: MockUsage): Json => ({
  input_tokens: u.input + u.cacheRead,
  input_tokens_details: { cached_tokens: u.cacheRead },
  output_tokens: u.output,
  output_tokens_details: { reasoning_tokens: u.reasoning },
  total_tokens: u.input + u.cacheRead + u.output
})

/** OpenAI embeddings: input only. */
export const openaiEmbeddingsUsage = (u: MockUsage): Json => ({ prompt_tokens: u.input, total_tokens: u.input })

/** OpenAI Realtime `response.done`: text tokens only; cached tokens are part of input_tokens. */
export const openaiRealtimeUsage = (u: MockUsage): Json => ({
  total_tokens: u.input + u.cacheRead + u.output,
  input_tokens: u.input + u.cacheRead,
  output_tokens: u.output,
  input_token_details: {
    text_tokens: u.input + u.cacheRead,
    audio_tokens: 0,
    image_tokens: 0,
    cached_tokens: u.cacheRead,
    cached_tokens_details: { text_tokens: u.cacheRead, audio_tokens: 0, image_tokens: 0 }
  },
  output_token_details: { text_tokens: u.output, audio_tokens: 0 }
})

/** Anthropic: input_tokens excludes both cache counts; thinking is part of output_tokens. */
export const anthropicUsage = (u: MockUsage, outputSoFar = u.output): { [key: string]: Json } => ({
  input_tokens: u.input,
  cache_creation_input_tokens: u.cacheWrite,
  cache_read_input_tokens: u.cacheRead,
  cache_creation: { ephemeral_5m_input_tokens: u.cacheWrite, ephemeral_1h_input_tokens: 0 },
  output_tokens: outputSoFar,
  output_tokens_details: outputSoFar === u.output && u.reasoning > 0 ? { thinking_tokens: u.reasoning } : null,
  server_tool_use: null,
  service_tier: "standard"
})

/** Anthropic `message_delta.usage`: cumulative, the input fields repeated (as current API versions send). */
export const anthropicDeltaUsage = (u: MockUsage): Json => ({
  input_tokens: u.input,
  cache_creation_input_tokens: u.cacheWrite,
  cache_read_input_tokens: u.cacheRead,
  output_tokens: u.output,
  output_tokens_details: u.reasoning > 0 ? { thinking_tokens: u.reasoning } : null,
  server_tool_use: null
})

/**
 * Gemini usageMetadata after `candidates` of the visible output tokens so far: promptTokenCount includes the
 * cached tokens, thoughts are counted apart from candidates.
 */
export const geminiUsage = (u: MockUsage, candidates = u.output - u.reasoning): { [key: string]: Json } => ({
  promptTokenCount: u.input + u.cacheRead,
  candidatesTokenCount: candidates,
  totalTokenCount: u.input + u.cacheRead + candidates + u.reasoning,
  ...(u.cacheRead > 0 ? { cachedContentTokenCount: u.cacheRead } : {}),
  promptTokensDetails: [{ modality: "TEXT", tokenCount: u.input + u.cacheRead }],
  ...(u.cacheRead > 0 ? { cacheTokensDetails: [{ modality: "TEXT", tokenCount: u.cacheRead }] } : {}),
  ...(u.reasoning > 0 ? { thoughtsTokenCount: u.reasoning } : {})
})
