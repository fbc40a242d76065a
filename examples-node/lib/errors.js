// What a failure record says about whatever a job threw (protocol.md 7.4): exception, error,
// backtrace. Shared by the in-process worker and the job child, which load nothing else of it.

/** Error names and messages for failure records, whatever was thrown. */
export function describeError(err) {
  if (err instanceof Error || (err !== null && typeof err === 'object' && typeof err.message === 'string')) {
    const name = typeof err.name === 'string' && err.name !== '' ? err.name : 'Error';
    const message = String(err.message);
    return { exception: name, error: message, backtrace: stackFrames(err.stack) };
  }
  let text;
  try {
    text = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err));
  } catch {
    text = String(err);
  }
  return { exception: 'Error', error: `non-Error value thrown: ${text}`, backtrace: [] };
}

/** The "at ..." lines of a V8 stack, innermost first. */
export function stackFrames(stack) {
  if (typeof stack !== 'string') return [];
  return stack.split('\n').filter((l) => /^\s+at /.test(l)).map((l) => l.trim());
}
