/** Bad input data (a dataset line, a saved tokenizer); the message says where and what. */
export class DataError extends Error {
  override name = "DataError";
}
