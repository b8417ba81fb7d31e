// Comments in generated code (WGSL, CUDA C, runners) may quote user-chosen names: node names,
// model names. Every renderer passes them through here.

/** `text` kept on one line, in printable ASCII, and unable to end a block comment. */
export function commentSafe(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/\*\//g, '* /').replace(/[^\x20-\x7e]/g, '?');
}
