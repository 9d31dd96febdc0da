// Package proto_test checks the generated code against the descriptors.
package proto_test

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	supportv1 "github.com/sidekickhq/sidekick/proto/gen/sidekick/support/v1"
)

// vtMessage is what protoc-gen-go-vtproto adds (features marshal+size).
type vtMessage interface {
	proto.Message
	MarshalVT() ([]byte, error)
	SizeVT() int
}

// TestMarshalVTAgreesWithProtobuf fills every field of every message of
// sidekick.support.v1 (every list and map with two entries, each oneof
// case in turn) and checks that MarshalVT's bytes decode, with
// protobuf-go, to the same message and that SizeVT is their length. The
// bus publishes with MarshalVT, so a field the generated code missed
// would silently drop out of every event.
func TestMarshalVTAgreesWithProtobuf(t *testing.T) {
	// Referenced so the package's types are registered.
	_ = supportv1.File_sidekick_support_v1_inbound_proto
	n := 0
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if mt.Descriptor().ParentFile().Package() != "sidekick.support.v1" {
			return true
		}
		n++
		name := mt.Descriptor().FullName()
		variants := max(1, maxOneofCases(mt.Descriptor()))
		for v := range variants {
			m := mt.New()
			fill(m, v, 0)
			vt, ok := m.Interface().(vtMessage)
			if !ok {
				t.Errorf("%s has no MarshalVT: regenerate with make proto", name)
				return true
			}
			data, err := vt.MarshalVT()
			if err != nil {
				t.Fatalf("%s: MarshalVT: %v", name, err)
			}
			if vt.SizeVT() != len(data) || proto.Size(vt) != len(data) {
				t.Errorf("%s: SizeVT %d, proto.Size %d, encoded %d bytes", name, vt.SizeVT(), proto.Size(vt), len(data))
			}
			back := mt.New().Interface()
			if err := proto.Unmarshal(data, back); err != nil {
				t.Fatalf("%s: decode MarshalVT's bytes: %v", name, err)
			}
			if !proto.Equal(vt, back) {
				t.Errorf("%s (variant %d): MarshalVT lost something:\n sent %v\n  got %v", name, v, vt, back)
			}
		}
		return true
	})
	if n < 5 {
		t.Fatalf("checked %d messages of sidekick.support.v1; the registry is not what this test expects", n)
	}
}

func maxOneofCases(md protoreflect.MessageDescriptor) int {
	most := 0
	for i := range md.Oneofs().Len() {
		most = max(most, md.Oneofs().Get(i).Fields().Len())
	}
	return most
}

// fill sets every field of m to a value that is not the default; of each
// oneof it sets case number variant (modulo the cases).
func fill(m protoreflect.Message, variant, depth int) {
	md := m.Descriptor()
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		if o := fd.ContainingOneof(); o != nil && !o.IsSynthetic() {
			if o.Fields().Get(variant%o.Fields().Len()) != fd {
				continue
			}
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for k := range 2 {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fill(e.Message(), variant, depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(fd, k))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for k := range 2 {
				key := scalar(fd.MapKey(), k).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v := mp.NewValue()
					fill(v.Message(), variant, depth+1)
					mp.Set(key, v)
				} else {
					mp.Set(key, scalar(fd.MapValue(), k))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			if depth < 3 {
				fill(m.Mutable(fd).Message(), variant, depth+1)
			}
		default:
			m.Set(fd, scalar(fd, 0))
		}
	}
}

// scalar is a non-default value of fd's kind; k varies it.
func scalar(fd protoreflect.FieldDescriptor, k int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(true)
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vals.Get((1 + k) % vals.Len()).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(-7 - k))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(-1<<40 - k))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(300 + k))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(1<<40 + k))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(1.5 + float64(k)))
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(2.25 + float64(k))
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(fmt.Sprintf("%s-%d-é", fd.Name(), k))
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte{0, 0xff, byte(k)})
	}
	panic(fmt.Sprintf("field %s: kind %s not handled", fd.FullName(), fd.Kind()))
}

// BenchmarkMarshalInboundMessage compares the two encoders on an
// InboundMessage with every field set and eight attributes, as a Slack
// message has.
func BenchmarkMarshalInboundMessage(b *testing.B) {
	m := &supportv1.InboundMessage{}
	fill(m.ProtoReflect(), 0, 0)
	for _, k := range []string{"team_id", "channel_id", "ts", "thread_ts", "event", "channel_type"} {
		m.Attributes[k] = "C061EG9SL"
	}
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MarshalVT", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.MarshalVT(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
