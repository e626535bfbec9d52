package memory

import (
	"testing"
	"time"

	"github.com/switchboard/switchboard/state"
	"github.com/switchboard/switchboard/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return New(time.Now) })
}
