package adapter

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
	"github.com/zishang520/socket.io/v3/pkg/types"
)

// maxDecodeDepth bounds the nesting of decoded msgpack values, so that a
// hostile message cannot exhaust the stack.
const maxDecodeDepth = 64

// errMalformed is wrapped by every decoding error of a pub/sub message.
var errMalformed = errors.New("malformed message")

// decodeMsgpack decodes one msgpack value into the generic shapes the
// socket.io encoder understands: nil, bool, int64, uint64, float64, string,
// []byte (msgpack bin), []any, map[string]any and time.Time (timestamp
// extension). Other extension values (notepack encodes JavaScript
// `undefined` as one) decode to nil. Trailing bytes are an error.
//
// It never panics and never allocates more than the input could describe:
// every container length is checked against the bytes left.
func decodeMsgpack(r *strings.Reader) (any, error) {
	d := msgpack.GetDecoder()
	defer msgpack.PutDecoder(d)
	d.Reset(r)
	v, err := decodeValue(d, r, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errMalformed, err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", errMalformed, r.Len())
	}
	return v, nil
}

func decodeValue(d *msgpack.Decoder, r *strings.Reader, depth int) (any, error) {
	if depth > maxDecodeDepth {
		return nil, errors.New("nested too deeply")
	}
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
		n, err := d.DecodeMapLen()
		if err != nil {
			return nil, err
		}
		// Each entry takes at least two bytes.
		if n < 0 || n > r.Len()/2 {
			return nil, fmt.Errorf("map length %d exceeds input", n)
		}
		m := make(map[string]any, n)
		for range n {
			k, err := decodeValue(d, r, depth+1)
			if err != nil {
				return nil, err
			}
			v, err := decodeValue(d, r, depth+1)
			if err != nil {
				return nil, err
			}
			m[keyString(k)] = v
		}
		return m, nil
	case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > r.Len() {
			return nil, fmt.Errorf("array length %d exceeds input", n)
		}
		s := make([]any, 0, n)
		for range n {
			v, err := decodeValue(d, r, depth+1)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case msgpcode.IsBin(c):
		if err := checkRawLen(r, c); err != nil {
			return nil, err
		}
		return d.DecodeBytes()
	case msgpcode.IsString(c):
		if err := checkRawLen(r, c); err != nil {
			return nil, err
		}
		return d.DecodeString()
	case msgpcode.IsExt(c):
		id, n, err := d.DecodeExtHeader()
		if err != nil {
			return nil, err
		}
		if n < 0 || n > r.Len() {
			return nil, fmt.Errorf("ext length %d exceeds input", n)
		}
		buf := make([]byte, n)
		if err := d.ReadFull(buf); err != nil {
			return nil, err
		}
		if id == -1 { // msgpack timestamp
			return decodeTimestamp(buf)
		}
		return nil, nil // notepack's `undefined` and unknown extensions
	case c == msgpcode.Nil, c == msgpcode.True, c == msgpcode.False,
		msgpcode.IsFixedNum(c),
		c >= msgpcode.Float && c <= msgpcode.Int64:
		return d.DecodeInterfaceLoose()
	default:
		return nil, fmt.Errorf("unknown msgpack code 0x%x", c)
	}
}

// checkRawLen checks, before the decoder allocates it, that the string or
// binary value starting at r's position (code c) is no longer than the
// input left. The decoder reads r directly (strings.Reader is a
// ByteScanner), so r's position is the decoder's.
func checkRawLen(r *strings.Reader, c byte) error {
	var size int // bytes of the length field
	switch c {
	case msgpcode.Str8, msgpcode.Bin8:
		size = 1
	case msgpcode.Str16, msgpcode.Bin16:
		size = 2
	case msgpcode.Str32, msgpcode.Bin32:
		size = 4
	default:
		return nil // fixstr: at most 31 bytes
	}
	var hdr [5]byte
	pos := r.Size() - int64(r.Len())
	if n, _ := r.ReadAt(hdr[:1+size], pos); n != 1+size {
		return io.ErrUnexpectedEOF
	}
	var n uint64
	for _, b := range hdr[1 : 1+size] {
		n = n<<8 | uint64(b)
	}
	if n > uint64(r.Len()-1-size) {
		return fmt.Errorf("length %d exceeds input", n)
	}
	return nil
}

// decodeTimestamp decodes the payload of the msgpack timestamp extension
// (type -1) in its 32, 64 and 96 bit forms.
func decodeTimestamp(b []byte) (any, error) {
	switch len(b) {
	case 4:
		return time.Unix(int64(binary.BigEndian.Uint32(b)), 0).UTC(), nil
	case 8:
		v := binary.BigEndian.Uint64(b)
		return time.Unix(int64(v&0x3ffffffff), int64(v>>34)).UTC(), nil
	case 12:
		nsec := binary.BigEndian.Uint32(b[:4])
		sec := int64(binary.BigEndian.Uint64(b[4:]))
		return time.Unix(sec, int64(nsec)).UTC(), nil
	}
	return nil, fmt.Errorf("timestamp of %d bytes", len(b))
}

// keyString renders a decoded map key the way JavaScript would.
func keyString(k any) string {
	switch k := k.(type) {
	case string:
		return k
	case []byte:
		return string(k)
	case nil:
		return "null"
	}
	return scalarString(k)
}

// scalarString renders a number or bool the way JavaScript's String() would
// (rooms may be numbers on the Node side).
func scalarString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float64:
		if v == math.Trunc(v) && math.Abs(v) < 1e21 {
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

// normalize converts an event argument into the generic shapes that both
// msgpack (for the wire) and the socket.io JSON encoder handle the same way
// as Node would: binary stays binary ([]byte), text readers become strings,
// nil lists and maps become empty ones, anything else that is not a plain
// JSON shape goes through encoding/json so that remote nodes see exactly
// what a local client would have seen.
//
// Nothing is copied that needs no change: a list or map whose elements are
// all plain comes back as it is (the gateway's emits are, and a broadcast
// reads them only while it runs), one with a changed element comes back as
// a new list or map, and the input is never modified.
//
// consumed reports whether a one-shot io.Reader was read; the caller must
// then use the normalized value for local delivery too.
func normalize(v any, depth int) (out any, consumed bool, err error) {
	out, _, consumed, err = normalizeValue(v, depth)
	return out, consumed, err
}

// normalizeValue is normalize that also reports whether out differs from v.
func normalizeValue(v any, depth int) (out any, changed, consumed bool, err error) {
	if depth > maxDecodeDepth {
		return nil, false, false, errors.New("payload nested too deeply")
	}
	switch x := v.(type) {
	case nil, bool, string, []byte,
		int, int8, int16, int32, int64,
		uint, uint8, uint16, uint32, uint64,
		float32, float64:
		return x, false, false, nil
	case *types.StringBuffer:
		return x.String(), true, false, nil
	case *types.BytesBuffer:
		// Bytes does not consume the buffer: local delivery can still read it.
		return bytes.Clone(x.Bytes()), true, false, nil
	case *strings.Reader:
		b, err := io.ReadAll(x)
		return string(b), true, true, err
	case io.Reader:
		b, err := io.ReadAll(x)
		if c, ok := x.(io.Closer); ok {
			_ = c.Close()
		}
		return b, true, true, err
	case []any:
		if x == nil {
			return []any{}, true, false, nil
		}
		var s []any // a copy, made at the first changed element
		for i, e := range x {
			n, ch, c, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, false, false, err
			}
			consumed = consumed || c
			if ch && s == nil {
				s = make([]any, len(x))
				copy(s, x[:i])
			}
			if s != nil {
				s[i] = n
			}
		}
		if s == nil {
			return x, false, consumed, nil
		}
		return s, true, consumed, nil
	case map[string]any:
		if x == nil {
			return map[string]any{}, true, false, nil
		}
		var m map[string]any // a copy, made at the first changed element
		for k, e := range x {
			n, ch, c, err := normalizeValue(e, depth+1)
			if err != nil {
				return nil, false, false, err
			}
			consumed = consumed || c
			if ch && m == nil {
				m = maps.Clone(x)
			}
			if m != nil {
				m[k] = n
			}
		}
		if m == nil {
			return x, false, consumed, nil
		}
		return m, true, consumed, nil
	default:
		raw, err := json.Marshal(x)
		if err != nil {
			return nil, false, false, fmt.Errorf("encode %T as JSON: %w", x, err)
		}
		var generic any
		if err := json.Unmarshal(raw, &generic); err != nil {
			return nil, false, false, fmt.Errorf("decode JSON of %T: %w", x, err)
		}
		return generic, true, false, nil
	}
}

// normalizeArgs normalizes the data of an event packet ([event, ...args]).
func normalizeArgs(data any) ([]any, bool, error) {
	n, consumed, err := normalize(data, 0)
	if err != nil {
		return nil, false, err
	}
	args, ok := n.([]any)
	if !ok {
		return nil, false, fmt.Errorf("event data is %T, not a list", data)
	}
	return args, consumed, nil
}
