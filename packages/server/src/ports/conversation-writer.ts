/**
 * The conversation writer: the seam between the chat operations and the single writer of each
 * conversation. In one process it is the domain's `Sequencer`; in cluster mode a proxy that sends
 * the request to the process owning the conversation's partition (`cluster/remote.ts`). Its data
 * types are defined here, with the port, so that both sides depend on the port only.
 * @module
 */

/** A member as the group's writer keeps it. */
export interface GroupMember {
  role: 'admin' | 'member';
  joinedSeq: number;
}

/** A group's current state: its name and its active members (removed ones are not here). */
export interface GroupState {
  conv: string;
  name: string;
  createdTs: number;
  members: Map<string, GroupMember>;
}

/** A change to a group, as requested by a member. */
export type GroupOp =
  | { op: 'create'; name: string; members: string[] }
  | { op: 'add'; users: string[] }
  | { op: 'remove'; users: string[] }
  | { op: 'leave' }
  /** An admin ends the group: every member is removed, and with nobody left nothing can change it again. */
  | { op: 'delete' }
  | { op: 'rename'; name: string }
  | { op: 'role'; user: string; role: 'admin' | 'member' }
  /**
   * The actor joins through an invite made by `inviter` (checked before by `GroupAdmission`). It
   * is good only while the inviter is an admin whose membership began at `inviterJoinedSeq`.
   */
  | { op: 'join'; inviter: string; inviterJoinedSeq: number };

/** A validated message waiting for its seq. */
export interface SendRequest {
  conv: string;
  from: string;
  from_device: string;
  cmid: string;
  kind: string;
  body: string;
  reply_to?: number;
  media?: string[];
}

/** What the sender is told once the message is durable. */
export interface SendOutcome {
  seq: number;
  ts: number;
  dup: boolean;
  /** How many inboxes the message went to (absent for a duplicate): what its send cost in fan-out. */
  recipients?: number;
}

/** What a group change produced: its system message's seq, or nothing when it changed nothing. */
export type ChangeOutcome =
  | {
      seq: number;
      ts: number;
      /** Inboxes the system message went to, and the group's size after the change. */
      recipients?: number;
      members?: number;
    }
  | { seq: null };

/**
 * What the chat operations need of a conversation's writer: the in-process `Sequencer`, or in
 * cluster mode a proxy to the process that owns the conversation.
 */
export interface ConversationWriter {
  /** Queues a message; resolves when it is durable (or was already stored). */
  submit(req: SendRequest): Promise<SendOutcome>;
  /** Applies a group change by `actor`; resolves once its system message is durable. */
  change(conv: string, actor: string, device: string, op: GroupOp): Promise<ChangeOutcome>;
  /** A group's current state (null: no such group). */
  group(conv: string): Promise<GroupState | null>;
  /** Whether `user` is a current member of `conv`. */
  isMember(conv: string, user: string): Promise<boolean>;
  /** The last durable seq of `conv` when known without I/O, else undefined. */
  lastSeq(conv: string): number | undefined;
}
