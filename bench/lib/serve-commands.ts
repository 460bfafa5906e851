/**
 * The child's half of the bench's child-process protocol: a child script exposes a table of
 * commands, the runner calls them one at a time over Node's IPC channel and gets the result (or
 * the error) back. Measuring happens inside the child; the runner only orchestrates, so its own
 * event loop and heap never sit inside a timed section.
 */

/** A child's commands: each takes one JSON-serializable argument and returns a JSON-serializable result. */
export type CommandTable = Record<string, (args: never) => unknown>;

export interface CommandRequest {
  seq: number;
  command: string;
  args: unknown;
}

export type ChildMessage =
  { ready: true } | { seq: number; result: unknown } | { seq: number; error: { message: string; stack?: string } };

/**
 * Answers the runner's calls until the runner disconnects, then exits. Calls are handled in
 * order, never overlapping, so one measurement cannot disturb another.
 */
export function serveCommands(commands: CommandTable): void {
  const send = process.send?.bind(process);
  if (!send) {
    process.stderr.write('this script is a bench child: run it through `npm run bench`\n');
    process.exit(2);
  }
  let queue: Promise<void> = Promise.resolve();
  process.on('message', (message: CommandRequest) => {
    queue = queue.then(() => handle(commands, message, send));
  });
  // The runner going away (finished, crashed or killed) ends the child too.
  process.on('disconnect', () => process.exit(0));
  send({ ready: true } satisfies ChildMessage);
}

async function handle(
  commands: CommandTable,
  request: CommandRequest,
  send: (message: ChildMessage) => boolean,
): Promise<void> {
  const command = Object.prototype.hasOwnProperty.call(commands, request.command)
    ? commands[request.command]
    : undefined;
  try {
    if (!command) throw new Error(`unknown command ${JSON.stringify(request.command)}`);
    const result = await command(request.args as never);
    send({ seq: request.seq, result });
  } catch (error) {
    const { message, stack } = error instanceof Error ? error : new Error(String(error));
    send({ seq: request.seq, error: { message, stack } });
  }
}

/** Runs a full garbage collection when the child was started with --expose-gc (the runner does that). */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
