package clienttest_test

import (
	"github.com/earshot/earshot/device/client/clienttest"
	"net"
	"testing"
)

func TestMosquittoHarness(t *testing.T) {
	m := clienttest.StartMosquitto(t, "allow_anonymous true")
	c, err := net.Dial("tcp", m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	m.Restart()
	c, err = net.Dial("tcp", m.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Log(m.Log())
}
