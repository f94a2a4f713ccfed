/** What other folders may use from tenancy. */
export {
  can,
  scopesAllow,
  grantableScopes,
  mayAssignRole,
  mayRemoveMember,
  roleAtLeast,
  roleRank,
  isScope,
  ROLES,
  SCOPES,
  ORG_ACTIONS,
  ORG_PERMISSIONS,
  PLATFORM_ACTIONS,
  type Action,
  type OrgAction,
  type PlatformAction,
  type Scope,
} from './permissions.js';
export { principalInOrg, spansOrgs } from './access.js';
export { RecordingIdentityEvents, type IdentityEvents, type KeyTokenSigner, type KeySigningInput, type TenancyDeps } from './ports.js';
export { OrgService, type CreateOrgInput } from './orgs.js';
export { UserService, insertUser, newPepper, type CreateUserInput, type UpdateUserInput, type MeView } from './users.js';
export { MembershipService, type AddMemberInput } from './memberships.js';
export { KeyService, type CreateKeyInput, type CreatedKey, type ListKeysOptions } from './keys.js';
export { RuntimeKeyService, runtimeRowId, DEFAULT_RUNTIME_SCOPES, DEFAULT_RUNTIME_MINT_TIMEOUT_MS, type MintRuntimeInput } from './runtimes.js';
export { bootstrapPlatformAdmin, BOOTSTRAP_SCOPES, type BootstrapOptions, type BootstrapResult } from './bootstrap.js';
export { registerTenancyRoutes, type TenancyRouteDeps } from './routes.js';
export type { OrgView, UserView, MemberView, KeyView } from './views.js';
