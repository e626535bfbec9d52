// Package sioparser is the Socket.IO packet parser the node gives the
// socket.io library (ServerOptions.SetParser). Its Decoder takes the plain
// event packets clients send and leaves each argument as the JSON it came
// as (see Decoder); everything else goes to the library's decoder. Its
// Encoder writes the packets whose data are plain JSON values
// (nil, booleans, strings, integers, float64, map[string]any, []any: what
// the gateway emits and acks, see gateway.plain) itself, in one pass,
// byte for byte as the library's encoder would (TestEncoderMatchesLibrary
// and FuzzEncoderMatchesLibrary hold it to that).
//
// Why: every ack and every broadcast is encoded by the library's encoder,
// which first copies the packet's whole data tree (preprocessData), walks
// it again for binary attachments, then marshals it with encoding/json:
// reflection, and a sort of every map's keys through reflect values. On
// the call path that was ~6% of a node's CPU. Packets with anything else
// in them (binary attachments, structs, other numeric types, a NaN) go to
// the library's encoder unchanged.
package sioparser

import (
	"github.com/zishang520/socket.io/parsers/socket/v3/parser"
)

// Parser makes Encoders and the library's Decoders.
type Parser struct{}

// NewParser returns the node's parser.
func NewParser() parser.Parser { return Parser{} }

// NewEncoder returns an Encoder.
func (Parser) NewEncoder() parser.Encoder { return &Encoder{library: parser.NewEncoder()} }

// NewDecoder returns a Decoder.
func (Parser) NewDecoder() parser.Decoder { return &Decoder{Decoder: parser.NewDecoder()} }
