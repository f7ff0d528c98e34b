// A form's one current problem — the console's own check or the API's answer — shown under
// the field it is about, and tied to that field for screen readers (aria-invalid/describedby).
export interface Problem { param?: string; message: string }

const errId = (param: string) => `err-${param}`;

export function FieldError({ param, problem }: { param: string; problem: Problem | undefined }) {
  if (problem?.param !== param) return null;
  return <p className="error-text field-error" role="alert" id={errId(param)}>{problem.message}</p>;
}

/** Spread on the input `param` names: marks it invalid while the problem is about it. */
export function invalidProps(param: string, problem: Problem | undefined): { 'aria-invalid'?: true; 'aria-describedby'?: string } {
  return problem?.param === param ? { 'aria-invalid': true, 'aria-describedby': errId(param) } : {};
}
