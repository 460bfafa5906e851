/** Shell-style patterns (`*`, `?`, `[abc]`) for listing names and objects. */
const cache = new Map<string, RegExp>();

export function globToRegExp(pattern: string): RegExp {
  let compiled = cache.get(pattern);
  if (compiled) return compiled;
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i];
    if (char === '*') source += '.*';
    else if (char === '?') source += '.';
    else if (char === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) source += '\\[';
      else {
        const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
        source += '[' + (body.startsWith('!') ? '^' + body.slice(1) : body) + ']';
        i = end;
      }
    } else source += char.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  compiled = new RegExp('^' + source + '$', 's');
  if (cache.size > 1000) cache.clear();
  cache.set(pattern, compiled);
  return compiled;
}
