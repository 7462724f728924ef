package lance_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	lance "github.com/lance-go/lance/lnc-client"
)

// exampleAddr is where the examples expect a server; they are compiled by
// go test but, having no Output comment, not run.
const exampleAddr = "127.0.0.1:1992"

func Example_produce() {
	ctx := context.Background()
	client, err := lance.Dial(ctx, exampleAddr, lance.WithToken("ci:secret"))
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if _, err := client.EnsureTopic(ctx, "events"); err != nil {
		log.Fatal(err)
	}
	producer, err := lance.NewProducer(client, lance.WithLinger(5*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	defer producer.Close(ctx)
	rec := lance.Record{Key: []byte("user-1"), Value: []byte(`{"clicked":true}`)}
	err = producer.Produce(ctx, "events", rec, func(off lance.Offset, err error) {
		if err != nil {
			log.Print(err)
			return
		}
		fmt.Println("stored at", off)
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := producer.Flush(ctx); err != nil {
		log.Fatal(err)
	}
}

func Example_consume() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := lance.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	consumer, err := lance.NewConsumer(client, "events", lance.WithMaxWait(2*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()
	if err := consumer.Seek(ctx, lance.SeekTime(time.Now().Add(-time.Hour))); err != nil {
		log.Fatal(err)
	}
	for rec, err := range consumer.Records(ctx) {
		if err != nil {
			log.Print(err)
			break
		}
		fmt.Printf("%d %s=%s\n", rec.Offset, rec.Key, rec.Value)
	}
	fmt.Println("resume from", consumer.Position())
}

func Example_admin() {
	ctx := context.Background()
	client, err := lance.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	if _, err := client.CreateTopic(ctx, "audit"); errors.Is(err, lance.ErrTopicExists) {
		fmt.Println("already there")
	} else if err != nil {
		log.Fatal(err)
	}
	if err := client.SetRetention(ctx, "audit", lance.Retention{MaxAge: 7 * 24 * time.Hour}); err != nil {
		log.Fatal(err)
	}
	topics, err := client.ListTopics(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range topics {
		fmt.Println(t.ID, t.Name)
	}
}

func ExampleFileOffsetStore() {
	dir, err := os.MkdirTemp("", "offsets-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store, err := lance.NewFileOffsetStore(dir)
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, ok, err := store.Load(ctx, "events", 7); err != nil {
		log.Fatal(err)
	} else if !ok {
		fmt.Println("nothing committed yet")
	}
	if err := store.Commit(ctx, "events", 7, 4096); err != nil {
		log.Fatal(err)
	}
	off, ok, err := store.Load(ctx, "events", 7)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(off, ok)
	// Output:
	// nothing committed yet
	// 4096 true
}

func ExampleWithOffsetStore() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := lance.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	store, err := lance.NewFileOffsetStore("/var/lib/myapp/offsets")
	if err != nil {
		log.Fatal(err)
	}
	// Consumer 1 resumes after its last commit; the first time, it starts
	// at the end of the log.
	consumer, err := lance.NewConsumer(client, "events", lance.WithOffsetStore(store, 1))
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()
	if err := consumer.Seek(ctx, lance.SeekEnd); err != nil {
		log.Fatal(err)
	}
	n := 0
	for rec, err := range consumer.Records(ctx) {
		if err != nil {
			log.Print(err)
			break
		}
		fmt.Printf("%s\n", rec.Value)
		// The record is handled: committing now never loses it.
		if n++; n%100 == 0 {
			if err := consumer.Commit(ctx); err != nil {
				log.Print(err)
			}
		}
	}
	if err := consumer.Commit(context.Background()); err != nil {
		log.Print(err)
	}
}

func ExampleNewMergedReplay() {
	ctx := context.Background()
	client, err := lance.Dial(ctx, exampleAddr)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	// Clicks and orders as one stream, in the order the server stored them;
	// every run over the same data yields the same sequence.
	replay, err := lance.NewMergedReplay(client, []string{"clicks", "orders"},
		lance.ReplayFrom(time.Now().Add(-24*time.Hour)))
	if err != nil {
		log.Fatal(err)
	}
	defer replay.Close()
	for rec, err := range replay.Records(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s@%d %s\n", rec.Topic, rec.Offset, rec.Value)
	}
}
