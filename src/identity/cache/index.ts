/** Identity cache and the events that invalidate it on every replica. What other folders may use. */
export { IdentityCache, type IdentityCacheOptions, type IdentityPubSub } from './identity-cache.js';
export { IdentityEvents, newPepper, type IdentityEventsOptions } from './events.js';
export { createDbIdentityRecords, type CachedUser, type IdentityRecords, type RevokedKey } from './records.js';
export { IDENTITY_CHANNEL } from './messages.js';
/** The name the design notes use for the same API. */
export { IdentityEvents as RevocationBus } from './events.js';
