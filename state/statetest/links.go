package statetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
)

// link returns an invitation link of mtg_a created at at(0), expiring at
// at(expires), usable maxUses times (0: unlimited).
func link(token string, expires time.Duration, maxUses int) *state.Link {
	return &state.Link{
		Token:     token,
		MeetingID: "mtg_a",
		CreatedBy: "alice",
		CreatedAt: state.At(at(0)),
		ExpiresAt: state.At(at(expires)),
		MaxUses:   maxUses,
	}
}

func mustCreateLink(t *testing.T, st state.Store, l *state.Link) {
	t.Helper()
	noErr(t, st.Links().CreateLink(ctx(t), l, at(0)), "CreateLink "+l.Token)
}

func testLinks(t *testing.T, newStore factory) {
	subtest(t, newStore, "GetLink returns the link as created", func(t *testing.T, st state.Store) {
		l := link("tok", 2*hour, 3)
		want := jsonOf(t, l)
		mustCreateLink(t, st, l)
		l.Uses = 99
		got, err := st.Links().GetLink(ctx(t), "tok", at(hour))
		noErr(t, err, "GetLink")
		eq(t, "stored link", jsonOf(t, got), want)
	})
	subtest(t, newStore, "an existing token is ErrConflict", func(t *testing.T, st state.Store) {
		mustCreateLink(t, st, link("tok", 2*hour, 3))
		// Choice: a link is never silently overwritten (its use count would reset).
		err := st.Links().CreateLink(ctx(t), link("tok", 5*hour, 0), at(0))
		isErr(t, err, state.ErrConflict, "CreateLink twice")
		got, err := st.Links().GetLink(ctx(t), "tok", at(0))
		noErr(t, err, "GetLink")
		eq(t, "MaxUses", got.MaxUses, 3)
	})
	subtest(t, newStore, "unknown token is ErrNotFound", func(t *testing.T, st state.Store) {
		_, err := st.Links().GetLink(ctx(t), "nope", at(0))
		isErr(t, err, state.ErrNotFound, "GetLink")
		_, err = st.Links().UseLink(ctx(t), "nope", at(0))
		isErr(t, err, state.ErrNotFound, "UseLink")
	})
	for _, tc := range []struct {
		name string
		link *state.Link
		now  time.Time
	}{
		{"expired", link("tok", 2*hour, 0), at(3 * hour)},
		{"revoked", func() *state.Link { l := link("tok", 2*hour, 0); l.Revoked = true; return l }(), at(hour)},
		{"used up", func() *state.Link { l := link("tok", 2*hour, 2); l.Uses = 2; return l }(), at(hour)},
	} {
		subtest(t, newStore, tc.name+" is ErrGone with the link", func(t *testing.T, st state.Store) {
			mustCreateLink(t, st, tc.link)
			want := jsonOf(t, tc.link)
			now := tc.now
			got, err := st.Links().GetLink(ctx(t), "tok", now)
			isErr(t, err, state.ErrGone, "GetLink")
			if got == nil {
				t.Fatal("GetLink returned no link with ErrGone")
			}
			eq(t, "link", jsonOf(t, got), want)
			got, err = st.Links().UseLink(ctx(t), "tok", now)
			isErr(t, err, state.ErrGone, "UseLink")
			if got == nil {
				t.Fatal("UseLink returned no link with ErrGone")
			}
			eq(t, "link after a refused use", jsonOf(t, got), want)
			got, _ = st.Links().GetLink(ctx(t), "tok", now)
			eq(t, "stored link after a refused use", jsonOf(t, got), want)
		})
	}
	subtest(t, newStore, "UseLink counts uses up to MaxUses", func(t *testing.T, st state.Store) {
		mustCreateLink(t, st, link("tok", 2*hour, 2))
		for i := 1; i <= 2; i++ {
			l, err := st.Links().UseLink(ctx(t), "tok", at(hour))
			noErr(t, err, "UseLink")
			eq(t, "Uses", l.Uses, i)
		}
		l, err := st.Links().UseLink(ctx(t), "tok", at(hour))
		isErr(t, err, state.ErrGone, "UseLink past MaxUses")
		eq(t, "Uses", l.Uses, 2)
		_, err = st.Links().GetLink(ctx(t), "tok", at(hour))
		isErr(t, err, state.ErrGone, "GetLink of a used-up link")
	})
	subtest(t, newStore, "no MaxUses is unlimited", func(t *testing.T, st state.Store) {
		mustCreateLink(t, st, link("tok", 2*hour, 0))
		for i := 1; i <= 10; i++ {
			l, err := st.Links().UseLink(ctx(t), "tok", at(hour))
			noErr(t, err, "UseLink")
			eq(t, "Uses", l.Uses, i)
		}
		l, err := st.Links().GetLink(ctx(t), "tok", at(hour))
		noErr(t, err, "GetLink")
		eq(t, "Uses", l.Uses, 10)
	})
	subtest(t, newStore, "concurrent uses: exactly MaxUses succeed", func(t *testing.T, st state.Store) {
		const maxUses, n = 5, 40
		mustCreateLink(t, st, link("tok", 2*hour, maxUses))
		var (
			wg         sync.WaitGroup
			mu         sync.Mutex
			ok         int
			seen       = map[int]bool{}
			unexpected []error
		)
		for range n {
			wg.Go(func() {
				l, err := st.Links().UseLink(ctx(t), "tok", at(hour))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
					seen[l.Uses] = true
				case !errors.Is(err, state.ErrGone):
					unexpected = append(unexpected, err)
				}
			})
		}
		wg.Wait()
		if len(unexpected) > 0 {
			t.Fatalf("unexpected errors: %v", unexpected)
		}
		eq(t, "successful uses", ok, maxUses)
		eq(t, "distinct use counts returned", len(seen), maxUses)
		l, _ := st.Links().GetLink(ctx(t), "tok", at(hour))
		eq(t, "Uses", l.Uses, maxUses)
	})
}
