package media_test

import (
	"bytes"
	"fmt"
	"log"

	"serendip/media"
)

// A signal on the wire: a varint length, then version, kind and the four
// length-prefixed fields.
func ExampleWriteSignal() {
	var stream bytes.Buffer
	if err := media.WriteSignal(&stream, media.Signal{Kind: media.SignalBye, MatchID: "ab", Reason: "next"}); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("% x\n", stream.Bytes())

	sig, err := media.ReadSignal(&stream)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sig.Kind, sig.MatchID, sig.Reason)
	// Output:
	// 0c 01 05 02 61 62 00 00 04 6e 65 78 74
	// bye ab next
}

// How a node drives a call. sendToPartner writes to the signal stream;
// the stream reader calls HandleSignal for each signal.
func ExampleEngine_NewSession() {
	eng, err := media.NewEngine(media.DefaultEngineConfig())
	if err != nil {
		log.Fatal(err)
	}
	sendToPartner := func(sig media.Signal) error { return nil } // media.WriteSignal(stream, sig)
	s, err := eng.NewSession(media.SessionConfig{
		Role:      media.Offerer,
		Send:      sendToPartner,
		VideoFile: "../testdata/clip.ivf",
		AudioFile: "../testdata/clip.ogg",
		RecordDir: "", // set to record the partner
		OnState:   func(st media.State) { fmt.Println("state:", st) },
		OnChat:    func(text string) { fmt.Println("partner says:", text) },
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := s.Start(); err != nil { // sends the offer
		log.Fatal(err)
	}
	// for { sig, err := media.ReadSignal(stream); ...; s.HandleSignal(sig) }
	if err := s.Close(); err != nil {
		log.Fatal(err)
	}
	<-s.Done() // the last callback (closed) has run
	// Output:
	// state: connecting
	// state: closed
}
