// Test-side entry to the mock LLM provider (re-exports src/mock/server.ts).
export {
  DEFAULT_KEYS,
  deterministicBytes,
  deterministicStream,
  type MockOptions,
  type MockProvider,
  type RecordedRequest,
  startMockProvider
} from "../../src/mock/server.js"
