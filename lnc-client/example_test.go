package lance_test

import (
	"context"
	"errors"
	"fmt"
	"log"
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
