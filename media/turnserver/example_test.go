package turnserver_test

import (
	"fmt"
	"time"

	"github.com/assist-video/assist/media/turnserver"
)

// How signaling uses the server: one per node, and for each participant joining a session,
// ICE servers with credentials for that session only.
func Example() {
	secret := []byte("shared by every node, from the config bucket")
	srv, err := turnserver.Start(turnserver.Config{
		Secret:        secret,
		PublicIP:      "127.0.0.1",
		ListenUDP:     "127.0.0.1:0",
		ListenTCP:     "127.0.0.1:0",
		SessionActive: func(sessionID string) bool { return sessionID == "sess_1" },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()

	creds := turnserver.IssueCredentials(secret, "sess_1", 10*time.Minute, time.Now())
	// welcome.ice_servers: [{urls, username, credential}]
	fmt.Println(len(srv.URLs("turn.example.com")), creds.Username != "", creds.Password != "")
	// Output: 2 true true
}
