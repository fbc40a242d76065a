// The stderr logger every part of the Node worker writes through (the worker and its job children).
const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** A stderr logger honouring JOBWIRE_LOG_LEVEL (debug, info, warn, error, silent; default info). */
export function stderrLogger(level = process.env.JOBWIRE_LOG_LEVEL || 'info') {
  const min = LEVELS[level] ?? LEVELS.info;
  const out = (lvl) => (msg) => {
    if (LEVELS[lvl] >= min) process.stderr.write(`${new Date().toISOString()} jobwire-node[${process.pid}] ${lvl}: ${msg}\n`);
  };
  return { debug: out('debug'), info: out('info'), warn: out('warn'), error: out('error') };
}
