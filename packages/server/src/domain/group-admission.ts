/**
 * Who may put whom in a group, and joining through invites.
 *
 * - **Blocking and `group_add`.** Nobody can put a user in a group (`create_group`,
 *   `add_members`) who has blocked them, or whose `group_add` setting is `nobody`. Both answer
 *   `forbidden` with the same words, so a refusal does not tell a blocked user they are blocked.
 * - **A budget per recipient.** Being put in groups by others is limited per recipient (a token
 *   bucket over the `RateLimiter` port: one process's buckets embedded, Redis in cluster mode, so
 *   the budget holds over every gateway). Past it the change is refused with `rate_limited` and
 *   nothing is stored; the tokens taken for the other recipients of that change are given back.
 *   Joining through an invite is the joiner's own choice and is not counted here.
 * - **Invites.** An admin makes a code (≥ 128 random bits, base64url); anyone holding it may join
 *   until it expires, is revoked or is used up, and only while its creator is still an admin of
 *   the group without a break in membership (checked when the join gets its seq, by the group's
 *   writer). Codes are never stored (the store keys invites by the code's SHA-256) nor logged.
 *
 * These checks are made when the request arrives, with the group's state and the users' settings
 * as they are then; the group's writer checks admin rights, size and the inviter again at the
 * change's seq.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { DEFAULT_INVITE_EXPIRES_MS, MAX_INVITE_EXPIRES_MS } from '@parley/protocol';
import type { Clock } from '../ports/clock.js';
import type { ChangeOutcome, ConversationWriter, GroupOp, GroupState } from '../ports/conversation-writer.js';
import type { Invite, InviteStore } from '../ports/invite-store.js';
import type { RateLimit, RateLimiter } from '../ports/rate-limiter.js';
import { badRequest, ParleyError } from './errors.js';
import { inviteNotFound, inviterStands } from './group-rules.js';
import { cannotWrite } from './sequencer.js';
import type { UserDirectory } from './users.js';

/** Random bytes of an invite code: 144 bits, 24 base64url characters without padding. */
const INVITE_CODE_BYTES = 18;

/** The limits admission applies. */
export interface AdmissionLimits {
  /** Per recipient: how often others may put them in groups (each create or add naming them is one). */
  groupAddsPerRecipient: RateLimit;
  /** Per user: invite codes made. */
  inviteCreates: RateLimit;
  /** The most members of a group (`too_large` beyond). */
  maxGroupSize: number;
}

/** What admission needs. */
export interface AdmissionDeps {
  /** The conversations' writers (the in-process sequencer, or the cluster's remote writer). */
  writer: ConversationWriter;
  users: Pick<UserDirectory, 'isBlocked' | 'settings'>;
  invites: InviteStore;
  limiter: RateLimiter;
  clock: Clock;
  limits: AdmissionLimits;
}

/** What `join` did: the group, and the system message that added the joiner (none when already in). */
export type JoinOutcome = { conv: string } & ChangeOutcome;

/** The store's key of an invite code: its SHA-256, base64url. */
export function inviteId(code: string): string {
  return createHash('sha256').update(code).digest('base64url');
}

const onlyAdmins = (conv: string) => new ParleyError('forbidden', `only admins of ${conv} may do this`);

/**
 * Applies the admission rules to group creation and additions, and runs invites (make, revoke,
 * join). Holds no state of its own: buckets live behind the `RateLimiter`, invites in the store.
 */
export class GroupAdmission {
  constructor(private readonly d: AdmissionDeps) {}

  /**
   * Applies a group change by `actor` through the group's writer, after refusing additions of
   * users who blocked the actor, who allow no group adds, or whose budget is spent. The budget
   * taken is given back when the change fails or changes nothing.
   */
  async change(actor: string, device: string, conv: string, op: GroupOp): Promise<ChangeOutcome> {
    if (op.op === 'join') throw badRequest('joining a group takes an invite');
    const added = await this.admit(actor, conv, op);
    let outcome: ChangeOutcome;
    try {
      outcome = await this.d.writer.change(conv, actor, device, op);
    } catch (err) {
      this.giveBack(added);
      throw err;
    }
    if (outcome.seq === null) this.giveBack(added);
    return outcome;
  }

  /** Makes an invite code to `conv` (admins only; limited per user). The code is shown only here. */
  async createInvite(
    actor: string,
    conv: string,
    options: { expiresInMs?: number; maxUses?: number } = {},
  ): Promise<{ code: string; expires_ts: number }> {
    const { me } = await this.adminOf(actor, conv);
    const wait = await this.d.limiter.take(`invite:${actor}`, 1, this.d.limits.inviteCreates);
    if (wait > 0) throw new ParleyError('rate_limited', `too many invites; retry in ${wait} ms`, wait);
    const code = randomBytes(INVITE_CODE_BYTES).toString('base64url');
    const now = this.d.clock.now();
    const ttl = Math.min(options.expiresInMs ?? DEFAULT_INVITE_EXPIRES_MS, MAX_INVITE_EXPIRES_MS);
    const invite: Invite = {
      id: inviteId(code),
      conv,
      creator: actor,
      creatorJoinedSeq: me.joinedSeq,
      createdTs: now,
      expiresTs: now + ttl,
      uses: 0,
    };
    if (options.maxUses !== undefined) invite.maxUses = options.maxUses;
    await this.d.invites.create(invite);
    return { code, expires_ts: invite.expiresTs };
  }

  /**
   * Revokes an invite of `conv` (admins only). Idempotent: a code that is not (or no longer) an
   * invite of `conv` changes nothing, and an invite of another group is never touched.
   */
  async revokeInvite(actor: string, conv: string, code: string): Promise<void> {
    await this.adminOf(actor, conv);
    const id = inviteId(code);
    const invite = await this.d.invites.get(id);
    if (invite?.conv === conv) await this.d.invites.revoke(id);
  }

  /**
   * Adds `actor` to the group of an invite code, through the group's writer (a `members_added`
   * system message with the joiner as actor). A code that cannot be used, for whatever reason,
   * is `not_found`; a joiner already in the group gets the group without a change (no use counted).
   */
  async join(actor: string, device: string, code: string): Promise<JoinOutcome> {
    const id = inviteId(code);
    const invite = await this.d.invites.get(id);
    const now = this.d.clock.now();
    if (!invite || invite.expiresTs <= now) throw inviteNotFound();
    const conv = invite.conv;
    const g = await this.d.writer.group(conv);
    if (!g || !inviterStands(g, invite.creator, invite.creatorJoinedSeq)) throw inviteNotFound();
    if (g.members.has(actor)) return { conv, seq: null };
    if (invite.maxUses !== undefined && invite.uses >= invite.maxUses) throw inviteNotFound();
    this.checkSize(g, 1);
    if (!(await this.d.invites.take(id, now))) throw inviteNotFound();
    const op: GroupOp = { op: 'join', inviter: invite.creator, inviterJoinedSeq: invite.creatorJoinedSeq };
    let outcome: ChangeOutcome;
    try {
      outcome = await this.d.writer.change(conv, actor, device, op);
    } catch (err) {
      this.release(id);
      throw err;
    }
    if (outcome.seq === null) this.release(id);
    return { conv, ...outcome };
  }

  /**
   * The users a create or add would put in a group, once they are all admitted: refuses the
   * change (`forbidden`, `too_large`, `rate_limited`) before anything is stored or charged.
   */
  private async admit(actor: string, conv: string, op: GroupOp): Promise<string[]> {
    let added: string[];
    if (op.op === 'create') {
      added = [...new Set(op.members)].filter((u) => u !== actor);
      this.checkSize(null, added.length + 1);
    } else if (op.op === 'add') {
      // Checked here as well as by the writer, so a non-admin cannot spend strangers' budgets.
      const { g } = await this.adminOf(actor, conv);
      added = [...new Set(op.users)].filter((u) => !g.members.has(u));
      this.checkSize(g, added.length);
    } else {
      return [];
    }
    if (added.length === 0) return added;
    const refused = await Promise.all(
      added.map(
        async (u) =>
          (await this.d.users.isBlocked(u, actor)) || (await this.d.users.settings(u)).groupAdd === 'nobody',
      ),
    );
    const first = added[refused.indexOf(true)];
    if (first !== undefined) {
      // The same words for a block and for `group_add: nobody`: a refusal reveals no block.
      throw new ParleyError('forbidden', `cannot add ${first}: they join groups by invite only`);
    }
    const limit = this.d.limits.groupAddsPerRecipient;
    const waits = await Promise.all(added.map((u) => this.d.limiter.take(recipientKey(u), 1, limit)));
    const wait = Math.max(...waits);
    if (wait > 0) {
      this.giveBack(added.filter((_, i) => waits[i] === 0));
      const who = added[waits.findIndex((w) => w > 0)];
      throw new ParleyError(
        'rate_limited',
        `${who} was added to too many groups lately; retry in ${wait} ms`,
        wait,
      );
    }
    return added;
  }

  /** The group and the actor's membership, when the actor is an admin of it. */
  private async adminOf(
    actor: string,
    conv: string,
  ): Promise<{ g: GroupState; me: { role: string; joinedSeq: number } }> {
    const g = await this.d.writer.group(conv);
    const me = g?.members.get(actor);
    if (!g || !me) throw cannotWrite(conv);
    if (me.role !== 'admin') throw onlyAdmins(conv);
    return { g, me };
  }

  private checkSize(g: GroupState | null, adding: number): void {
    const max = this.d.limits.maxGroupSize;
    if ((g?.members.size ?? 0) + adding > max) {
      throw new ParleyError('too_large', `a group has at most ${max} members`);
    }
  }

  /** Gives back recipients' tokens taken for a change that was not stored (best effort). */
  private giveBack(users: readonly string[]): void {
    const limit = this.d.limits.groupAddsPerRecipient;
    for (const u of users) void this.d.limiter.take(recipientKey(u), -1, limit).catch(() => {});
  }

  /** Gives back an invite use taken for a join that did not happen (best effort). */
  private release(id: string): void {
    void this.d.invites.release(id).catch(() => {});
  }
}

/** The bucket of being put in groups by others. */
const recipientKey = (user: string) => `group-add:${user}`;

/** The limits from the configuration's keys (per hour, as configured, into the buckets' per second). */
export function admissionLimits(c: {
  groupAddsPerRecipientBurst: number;
  groupAddsPerRecipientPerHour: number;
  inviteCreateBurst: number;
  inviteCreatePerHour: number;
  maxGroupSize: number;
}): AdmissionLimits {
  return {
    groupAddsPerRecipient: {
      burst: c.groupAddsPerRecipientBurst,
      ratePerSecond: c.groupAddsPerRecipientPerHour / 3600,
    },
    inviteCreates: { burst: c.inviteCreateBurst, ratePerSecond: c.inviteCreatePerHour / 3600 },
    maxGroupSize: c.maxGroupSize,
  };
}
