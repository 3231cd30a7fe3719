// Buffers handed down the stack for good: a layer that would keep a copy of data it was given
// (write-behind) may keep a donated buffer itself, since its giver never touches it again.
// The kernel bridge donates WRITE payloads (their request buffer is never read into again).
const donated = new WeakSet<Buffer>();

/** Marks buf as never modified or reused by its giver from now on. */
export function donate(buf: Buffer): Buffer {
  donated.add(buf);
  return buf;
}

/** buf itself when it was donated, else a copy of it. */
export function ownCopy(buf: Buffer): Buffer {
  return donated.has(buf) ? buf : Buffer.from(buf);
}
