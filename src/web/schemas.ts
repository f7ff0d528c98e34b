// Request and response schemas of the web console's own routes (sign-in, console sockets),
// documented in the OpenAPI document beside the API's.
import { Type, type Static } from '@sinclair/typebox';

export const SessionBody = Type.Object({
  UserName: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A host user (New-VMHostUser), with Password' })),
  Password: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
  Token: Type.Optional(Type.String({ minLength: 1, maxLength: 1024, description: "Instead of a user name and password: the host's API token (<data-dir>/token), which signs in as the built-in Administrator 'admin'" })),
}, { additionalProperties: false });
export type SessionBody = Static<typeof SessionBody>;

export const SessionView = Type.Object({
  Authenticated: Type.Boolean(),
  Via: Type.Union([Type.Literal('session'), Type.Literal('token')], { description: 'How this request was authenticated' }),
  UserName: Type.String({ description: "Who is signed in ('admin': the host's token)" }),
  Role: Type.Union([Type.Literal('Administrator'), Type.Literal('Operator'), Type.Literal('Viewer')]),
  ExpiresAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the session ends at the latest' })),
  ComputerName: Type.String(),
  Version: Type.String(),
});

export const ConsoleParams = Type.Object({ vm: Type.String({ minLength: 1, description: 'VM id or exact name' }) });
