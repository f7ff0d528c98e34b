// Request schemas of the users, VMConnect access and audit routes (routes-users.ts).
import { Type, type Static } from '@sinclair/typebox';
import { ROLES } from './roles.ts';

const UserName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', description: 'Letters, digits, . _ - (case-insensitive, unique on the host)' });
const Role = Type.Union(ROLES.map((r) => Type.Literal(r)), { description: 'Administrator, Operator (power of VMs) or Viewer (read-only)' });
const Password = Type.String({ minLength: 8, maxLength: 1024, description: 'At least 8 characters; stored as an scrypt hash only' });

export const UserRef = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });
export const UserTokenRef = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), id: Type.String({ minLength: 1, maxLength: 64 }) });

export const NewUserBody = Type.Object({
  Name: UserName,
  Role,
  Password: Type.Optional(Password),
}, { additionalProperties: false });
export type NewUserBody = Static<typeof NewUserBody>;

export const SetUserBody = Type.Object({
  Role: Type.Optional(Role),
  Password: Type.Optional(Password),
}, { additionalProperties: false, minProperties: 1 });
export type SetUserBody = Static<typeof SetUserBody>;

export const VmConnectQuery = Type.Object({
  VMName: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  UserName: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
}, { additionalProperties: false });
export type VmConnectQuery = Static<typeof VmConnectQuery>;

export const VmConnectBody = Type.Object({ UserName: Type.String({ minLength: 1, maxLength: 64 }) }, { additionalProperties: false });
export type VmConnectBody = Static<typeof VmConnectBody>;

export const VmConnectRef = Type.Object({ vm: Type.String({ minLength: 1 }), user: Type.String({ minLength: 1, maxLength: 64 }) });

export const AuditQuery = Type.Object({
  Since: Type.Optional(Type.String({ format: 'date-time' })),
  UserName: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  Last: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
}, { additionalProperties: false });
export type AuditQuery = Static<typeof AuditQuery>;
