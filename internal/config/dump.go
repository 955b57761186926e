package config

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/vipd/vipd/internal/lvs"
)

// Dump renders the normalized model as indented JSON: field names are the
// keepalived keywords, durations are Go duration strings ("1.5s"),
// addresses are in text form, byte strings in hex. The output is stable
// (struct order), which the golden tests rely on.
func Dump(cfg *Config) []byte {
	var b bytes.Buffer
	dumpValue(&b, reflect.ValueOf(cfg), 0)
	b.WriteByte('\n')
	return b.Bytes()
}

var (
	durationType      = reflect.TypeOf(time.Duration(0))
	textMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// dumpNames renders the enumerations of package lvs by name.
var dumpNames = map[reflect.Type]func(reflect.Value) string{
	reflect.TypeOf(lvs.SchedFlags(0)): func(v reflect.Value) string {
		f := lvs.SchedFlags(v.Uint())
		var names []string
		for _, x := range []struct {
			f lvs.SchedFlags
			n string
		}{{lvs.FlagPersistent, "persistent"}, {lvs.FlagHashed, "hashed"}, {lvs.FlagOnePacket, "ops"},
			{lvs.FlagSched1, "flag-1"}, {lvs.FlagSched2, "flag-2"}, {lvs.FlagSched3, "flag-3"}} {
			if f&x.f != 0 {
				names = append(names, x.n)
			}
		}
		return strings.Join(names, "|")
	},
	reflect.TypeOf(lvs.TunnelType(0)): func(v reflect.Value) string {
		return [...]string{"ipip", "gue", "gre", "?"}[min(v.Uint(), 3)]
	},
}

func indent(b *bytes.Buffer, n int) {
	b.WriteByte('\n')
	b.WriteString(strings.Repeat("  ", n))
}

func dumpValue(b *bytes.Buffer, v reflect.Value, depth int) {
	if !v.IsValid() {
		b.WriteString("null")
		return
	}
	if f, ok := dumpNames[v.Type()]; ok {
		writeJSON(b, f(v))
		return
	}
	if v.Type() == durationType {
		writeJSON(b, time.Duration(v.Int()).String())
		return
	}
	if v.Kind() != reflect.Pointer && v.Type().Implements(textMarshalerType) {
		t, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			writeJSON(b, err.Error())
			return
		}
		writeJSON(b, string(t))
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			b.WriteString("null")
			return
		}
		dumpValue(b, v.Elem(), depth)
	case reflect.Struct:
		b.WriteByte('{')
		first := true
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if (strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")) && isEmpty(fv) {
				continue
			}
			if !first {
				b.WriteByte(',')
			}
			first = false
			indent(b, depth+1)
			writeJSON(b, name)
			b.WriteString(": ")
			dumpValue(b, fv, depth+1)
		}
		if !first {
			indent(b, depth)
		}
		b.WriteByte('}')
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			writeJSON(b, hex.EncodeToString(v.Bytes()))
			return
		}
		if v.Kind() == reflect.Slice && v.IsNil() {
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			indent(b, depth+1)
			dumpValue(b, v.Index(i), depth+1)
		}
		if v.Len() > 0 {
			indent(b, depth)
		}
		b.WriteByte(']')
	default:
		if s, ok := v.Interface().(fmt.Stringer); ok && v.Kind() != reflect.String && v.Kind() != reflect.Bool {
			if _, isInt := v.Interface().(int); !isInt {
				writeJSON(b, s.String())
				return
			}
		}
		writeJSON(b, v.Interface())
	}
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.String:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return v.IsZero()
}

func writeJSON(b *bytes.Buffer, x any) {
	data, err := json.Marshal(x)
	if err != nil {
		data, _ = json.Marshal(err.Error())
	}
	b.Write(data)
}
