/**
 * The CSV writer's output: bytes appended to one reusable buffer that is handed to the file
 * whenever it fills. Building bytes, not JS strings, lets string columns go from arrow's UTF-8
 * buffer to the file without being decoded and encoded again.
 */
/** Where the bytes go: a FileHandle, or anything that writes the same way (a stdout adapter). */
export interface ByteOutput {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>;
}

/** The buffer is written out once it holds this much. */
const FLUSH_BYTES = 1 << 20;

export class ByteSink {
  private bytes = Buffer.allocUnsafeSlow(2 * FLUSH_BYTES);
  private length = 0;
  /** Bytes handed to the file so far. */
  written = 0;

  constructor(private readonly handle: ByteOutput) {}

  /** Room for `count` more bytes. */
  private reserve(count: number): void {
    if (this.length + count <= this.bytes.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(2 * this.bytes.length, this.length + count));
    this.bytes.copy(next, 0, 0, this.length);
    this.bytes = next;
  }

  byte(value: number): void {
    this.reserve(1);
    this.bytes[this.length++] = value;
  }

  /** Text known to be ASCII, such as a formatted number: copied a char code at a time. */
  ascii(text: string): void {
    this.reserve(text.length);
    const { bytes } = this;
    let at = this.length;
    for (let i = 0; i < text.length; i++) bytes[at++] = text.charCodeAt(i);
    this.length = at;
  }

  /** Any text, encoded as UTF-8. */
  text(text: string): void {
    this.reserve(3 * text.length);
    this.length += this.bytes.write(text, this.length, 'utf8');
  }

  copy(source: Uint8Array, start: number, end: number): void {
    this.reserve(end - start);
    const { bytes } = this;
    let at = this.length;
    if (end - start < 32) for (let i = start; i < end; i++) bytes[at++] = source[i];
    else {
      bytes.set(source.subarray(start, end), at);
      at += end - start;
    }
    this.length = at;
  }

  /** Copies source[start, end) between quotes, doubling each quote inside. */
  copyQuoted(source: Uint8Array, start: number, end: number, quote: number): void {
    this.reserve(2 * (end - start) + 2);
    const { bytes } = this;
    let at = this.length;
    bytes[at++] = quote;
    for (let i = start; i < end; i++) {
      const byte = source[i];
      bytes[at++] = byte;
      if (byte === quote) bytes[at++] = quote;
    }
    bytes[at++] = quote;
    this.length = at;
  }

  /** Whether it is time to flush (checked before awaiting, since an await per row costs more than the row). */
  get full(): boolean {
    return this.length >= FLUSH_BYTES;
  }

  /** Writes what the buffer holds to the file. */
  async flush(): Promise<void> {
    let offset = 0;
    while (offset < this.length) {
      const { bytesWritten } = await this.handle.write(this.bytes, offset, this.length - offset);
      offset += bytesWritten;
    }
    this.written += this.length;
    this.length = 0;
  }
}
