package esclient_test

import (
	"context"
	"fmt"
	"time"

	"github.com/goeventstream/eventstream/pkg/esclient"
)

func Example() {
	url, stop := exampleServer() // a running eventstreamd, such as http://localhost:9922
	defer stop()
	ctx := context.Background()

	c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "demo", PrivateID: "example-player"})
	if err != nil {
		panic(err)
	}
	u, err := c.Sync(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("public id:", u.PublicID, "reset:", u.Reset, "first event:", u.Events[0].Type)

	// An event is sent with the next sync, and comes back, like everyone
	// else's, once the tick it landed in is over.
	if err := c.Send("move", "left"); err != nil {
		panic(err)
	}
	for {
		time.Sleep(50 * time.Millisecond)
		if u, err = c.Sync(ctx); err != nil {
			panic(err)
		}
		for _, e := range u.Events {
			if e.Type == "move" {
				fmt.Println(e.Type, e.Body, "from", e.Origin)
				return
			}
		}
	}
	// Output:
	// public id: 1 reset: true first event: _a
	// move left from 1
}

func ExampleClient_Run() {
	url, stop := exampleServer()
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := esclient.New(esclient.Config{BaseURL: url, Stream: "demo", PrivateID: "example-player"})
	if err != nil {
		panic(err)
	}
	err = c.Run(ctx, func(u esclient.Update) {
		for _, e := range u.Events {
			fmt.Printf("tick %d: %s from %s\n", e.T, e.Type, e.Origin)
		}
		if u.T > 1 {
			cancel() // a game would run until it quits
		}
	})
	fmt.Println(err)
	// Output:
	// tick 0: _a from _
	// tick 1: _c from _
	// context canceled
}
