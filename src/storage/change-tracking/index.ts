// Change tracking (issue 13): the dirty-block bitmap stage of a served disk, its file, and what
// consumers (replica, backup chains) take from it. See tracker.ts for the guarantees.
export { ChangeTracker, TRACKING_BLOCK, type TakenChanges, type ChangedExtent, type ConsumerStatus } from './tracker.ts';
