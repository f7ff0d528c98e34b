// A request's query string from the cmdlet's optional parameters: unset ones left out, and no
// '?' at all when none is set (the routes' schemas refuse empty values).
export function query(p: Record<string, string | undefined>): string {
  const q = new URLSearchParams(Object.entries(p).filter((e): e is [string, string] => e[1] !== undefined));
  return q.size > 0 ? `?${q}` : '';
}
