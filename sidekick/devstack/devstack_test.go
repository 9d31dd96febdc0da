package devstack

import "testing"

func TestClientEndpoints(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		want Endpoints
	}{
		"defaults": {nil, Endpoints{GRPCAddr: "127.0.0.1:9090", NATSURL: "nats://127.0.0.1:4222", ConsoleURL: "http://127.0.0.1:8080/console"}},
		"the dev stack moved": {
			map[string]string{"SIDEKICK_GRPC_ADDR": "127.0.0.1:9190", "SIDEKICK_NATS_ADDR": "127.0.0.1:4322", "SIDEKICK_HTTP_ADDR": "127.0.0.1:8180"},
			Endpoints{GRPCAddr: "127.0.0.1:9190", NATSURL: "nats://127.0.0.1:4322", ConsoleURL: "http://127.0.0.1:8180/console"},
		},
		"listening on every interface": {
			map[string]string{"SIDEKICK_GRPC_ADDR": ":9190", "SIDEKICK_HTTP_ADDR": "0.0.0.0:8180", "SIDEKICK_NATS_ADDR": "[::]:4322"},
			Endpoints{GRPCAddr: "127.0.0.1:9190", NATSURL: "nats://127.0.0.1:4322", ConsoleURL: "http://127.0.0.1:8180/console"},
		},
		"explicit client settings win": {
			map[string]string{"SIDEKICK_ADDR": "rotation:9090", "SIDEKICK_GRPC_ADDR": ":9190", "SIDEKICK_NATS_URL": "nats://nats:4222",
				"SIDEKICK_CONSOLE_URL": "https://sidekick.example.com/console"},
			Endpoints{GRPCAddr: "rotation:9090", NATSURL: "nats://nats:4222", ConsoleURL: "https://sidekick.example.com/console"},
		},
	} {
		if got := ClientEndpoints(tc.env); got != tc.want {
			t.Errorf("%s: %+v, want %+v", name, got, tc.want)
		}
	}
}
