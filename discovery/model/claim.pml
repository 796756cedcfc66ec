/*
 * The claim protocol of package discovery (see its doc, Matching), for
 * Spin: three nodes claim each other with random tickets over channels that
 * reorder messages; a claim that meets our own outstanding claim waits if it
 * is older and dies if it is younger (wait-die), crossing claims are
 * resolved by the smaller claim, and a late accept of an abandoned claim is
 * taken if its claimer still searches, else called off with a bye. The
 * pairing order, presence and the call are left
 * out: they decide whom to claim, not whether claims are safe.
 *
 * Checked (claim_test.go runs both):
 *   spin -a claim.pml            reliable channels, no timers: safety (the
 *                                monitor), no deadlock (no invalid end
 *                                state, and when nothing can happen no node
 *                                is left claiming or holding a claim).
 *   spin -a -DLOSSY claim.pml    messages may be lost and every timer
 *                                (ClaimTimeout, HoldTimeout, SetupTimeout)
 *                                may fire at any moment: safety, no invalid
 *                                end state.
 */

#define N 3
#ifndef MAXCLAIMS
#define MAXCLAIMS 3   /* claims per node: keeps the state space finite */
#endif
#define TICKETS 2     /* tickets 0..TICKETS-1; equal tickets fall to the id */

#define SEARCHING 0
#define CLAIMING 1
#define MATCHED 2

mtype = { CLAIM, REPLY, BYE };
#define ACCEPT 1
#define BUSY 2
#define CROSSING 3

/* kind, from, id, ticket (CLAIM) or verdict (REPLY) */
chan inbox[N] = [5] of { mtype, byte, byte, byte };

#ifndef MAXLOSS
#define MAXLOSS 1     /* lost messages per run (LOSSY) */
#endif
byte lost;

byte state[N];
byte partner[N];
byte matchid[N];  /* 0: none */
bool offerer[N];

/* (t1, id1) < (t2, id2): Claim.Less */
#define LESS(t1, i1, t2, i2) ((t1) < (t2) || ((t1) == (t2) && (i1) < (i2)))

/* Safety: two nodes that hold the same match id name each other, and
 * exactly one of them is the offerer; nobody is matched with itself. The
 * monitor can run in every reachable state, so a state that breaks it is
 * an assertion violation. */
#define AGREE(a, b) (!(state[a] == MATCHED && state[b] == MATCHED && matchid[a] == matchid[b]) || \
	(partner[a] == b && partner[b] == a && offerer[a] != offerer[b]))
/* Two nodes matched with each other hold the same match id: with
 * reliable channels only. With loss two claims given up by their claimers
 * can be accepted crosswise and their byes lost: two half-matches, both
 * answerers, that SetupTimeout ends (not a breach of AGREE). */
#ifdef LOSSY
#define MUTUAL(a, b) true
#else
#define MUTUAL(a, b) (!(state[a] == MATCHED && state[b] == MATCHED && partner[a] == b && partner[b] == a) || \
	matchid[a] == matchid[b])
#endif
#define SAFE (AGREE(0, 1) && AGREE(0, 2) && AGREE(1, 2) && \
	MUTUAL(0, 1) && MUTUAL(0, 2) && MUTUAL(1, 2) && \
	(state[0] != MATCHED || partner[0] != 0) && (state[1] != MATCHED || partner[1] != 1) && \
	(state[2] != MATCHED || partner[2] != 2))

active proctype monitor() {
end:	atomic { !SAFE -> assert(SAFE) }
}

proctype Node(byte me) {
	byte target, myid, myticket, claims, k;
	bool waiting;
	byte wfrom, wid;
	byte aban[MAXCLAIMS];   /* ids of claims we gave up, for late accepts */
	byte kind, from, id, arg;

	do
	/* Claim a peer: any other node, with any ticket. */
	:: atomic { state[me] == SEARCHING && claims < MAXCLAIMS ->
		if
		:: target = (me + 1) % N
		:: target = (me + 2) % N
		fi;
		if
		:: myticket = 0
		:: myticket = TICKETS - 1
		fi;
		myid = 1 + me * MAXCLAIMS + claims;
		claims++;
		state[me] = CLAIMING;
		partner[me] = target;
		inbox[target] ! CLAIM(me, myid, myticket) }

	/* Receive any message of the inbox: channels reorder. */
	:: atomic { inbox[me] ?? kind, from, id, arg ->
		if
		:: kind == CLAIM ->
			if
			:: state[me] == MATCHED ->
				if
				:: !offerer[me] && from == partner[me] && id == matchid[me] ->
					inbox[from] ! REPLY(me, id, ACCEPT)   /* a duplicate */
				:: else -> inbox[from] ! REPLY(me, id, BUSY)
				fi
			:: state[me] == SEARCHING ->
				inbox[from] ! REPLY(me, id, ACCEPT);
				state[me] = MATCHED; partner[me] = from; matchid[me] = id; offerer[me] = false
			:: state[me] == CLAIMING && from == target ->   /* crossing */
				if
				:: LESS(arg, id, myticket, myid) ->   /* theirs wins */
					aban[myid - 1 - me * MAXCLAIMS] = myid;
					if
					:: waiting -> inbox[wfrom] ! REPLY(me, wid, BUSY); waiting = false
					:: else -> skip
					fi;
					inbox[from] ! REPLY(me, id, ACCEPT);
					state[me] = MATCHED; partner[me] = from; matchid[me] = id; offerer[me] = false
				:: else -> inbox[from] ! REPLY(me, id, CROSSING)
				fi
			:: state[me] == CLAIMING && from != target ->
				if
				:: waiting -> inbox[from] ! REPLY(me, id, BUSY)   /* one waiter at most */
				:: !waiting && LESS(arg, id, myticket, myid) ->   /* older: waits */
					waiting = true; wfrom = from; wid = id
				:: !waiting && !LESS(arg, id, myticket, myid) ->  /* younger: dies */
					inbox[from] ! REPLY(me, id, BUSY)
				fi
			fi
		:: kind == REPLY ->
			if
			:: state[me] == CLAIMING && from == target && id == myid ->
				if
				:: arg == ACCEPT ->
					if
					:: waiting -> inbox[wfrom] ! REPLY(me, wid, BUSY); waiting = false
					:: else -> skip
					fi;
					state[me] = MATCHED; partner[me] = target; matchid[me] = myid; offerer[me] = true
				:: else ->   /* refused: accept the waiter, if any */
					if
					:: waiting ->
						inbox[wfrom] ! REPLY(me, wid, ACCEPT); waiting = false;
						state[me] = MATCHED; partner[me] = wfrom; matchid[me] = wid; offerer[me] = false
					:: else -> state[me] = SEARCHING
					fi
				fi
			:: else ->
				if
				:: arg == ACCEPT && !(state[me] == MATCHED && offerer[me] && matchid[me] == id) ->
					/* an accept of a claim we gave up: take it if we
					 * still search, else call it off */
					k = 0;
					do
					:: k < MAXCLAIMS && aban[k] == id && state[me] == SEARCHING ->
						aban[k] = 0;
						state[me] = MATCHED; partner[me] = from; matchid[me] = id; offerer[me] = true;
						break
					:: k < MAXCLAIMS && aban[k] == id && state[me] != SEARCHING ->
						aban[k] = 0; inbox[from] ! BYE(me, id, 0); break
					:: k < MAXCLAIMS && aban[k] != id -> k++
					:: k == MAXCLAIMS -> break
					od
				:: else -> skip
				fi
			fi
		:: kind == BYE ->
			if
			:: state[me] == MATCHED && matchid[me] == id && partner[me] == from ->
				state[me] = SEARCHING; matchid[me] = 0; partner[me] = 0
			:: else -> skip
			fi
		fi }

#ifdef LOSSY
	/* A message is lost (at most MAXLOSS in a run). */
	:: atomic { lost < MAXLOSS && inbox[me] ?? [kind, from, id, arg] -> inbox[me] ?? kind, from, id, arg; lost++ }
	/* ClaimTimeout: give up our claim (a late accept is called off). */
	:: atomic { state[me] == CLAIMING ->
		aban[myid - 1 - me * MAXCLAIMS] = myid;
		if
		:: waiting ->
			inbox[wfrom] ! REPLY(me, wid, ACCEPT); waiting = false;
			state[me] = MATCHED; partner[me] = wfrom; matchid[me] = wid; offerer[me] = false
		:: else -> state[me] = SEARCHING
		fi }
	/* HoldTimeout: refuse the waiting claim. */
	:: atomic { waiting -> inbox[wfrom] ! REPLY(me, wid, BUSY); waiting = false }
	/* SetupTimeout: a match whose call never started ends. */
	:: atomic { state[me] == MATCHED ->
		inbox[partner[me]] ! BYE(me, matchid[me], 0);
		state[me] = SEARCHING; matchid[me] = 0; partner[me] = 0 }
	/* Nothing can happen any more (every node used its claims). */
	:: timeout -> break
#else
	/* Nothing can happen any more: nobody may be left claiming or holding
	 * a claim (no wait cycle, no lost reply). */
	:: timeout -> assert(state[me] != CLAIMING && !waiting); break
#endif
	od
}

init {
	atomic {
		run Node(0); run Node(1); run Node(2)
	}
}
