//go:build mosquitto

// The C side of the plugin: the three entry points Mosquitto looks up, and the
// callbacks it calls, which hand over to the Go functions exported in plugin.go.
//
// The broker's own functions (mosquitto_callback_register, mosquitto_log_printf,
// mosquitto_client_id, ...) live in the mosquitto executable, not in a library. They
// are looked up at run time with dlsym(RTLD_DEFAULT, ...) instead of being linked:
// cgo links a throw-away executable from this package's C objects to learn their
// dynamic imports, and that link fails on symbols only the broker defines. Flags that
// allow undefined symbols would hide every other unresolved symbol as well; dlsym
// keeps the link strict and turns a missing symbol (a host that is not Mosquitto 2.0)
// into a clear start-up error.

#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "_cgo_export.h"

typedef int (*register_fn)(mosquitto_plugin_id_t *, int, MOSQ_FUNC_generic_callback, const void *, void *);
typedef int (*unregister_fn)(mosquitto_plugin_id_t *, int, MOSQ_FUNC_generic_callback, const void *);
typedef void (*log_fn)(int, const char *, ...);
typedef const char *(*client_str_fn)(const struct mosquitto *);

static register_fn p_register;
static unregister_fn p_unregister;
static log_fn p_log;
static client_str_fn p_client_id;
static client_str_fn p_client_username;
static mosquitto_plugin_id_t *p_id;

// earshot_log writes one line to the broker's log. msg is printed with "%s", never
// used as a format.
void earshot_log(int level, const char *msg) {
	if (p_log != NULL) {
		p_log(level, "%s", msg);
	}
}

static int resolve(void) {
	p_register = (register_fn)dlsym(RTLD_DEFAULT, "mosquitto_callback_register");
	p_unregister = (unregister_fn)dlsym(RTLD_DEFAULT, "mosquitto_callback_unregister");
	p_log = (log_fn)dlsym(RTLD_DEFAULT, "mosquitto_log_printf");
	p_client_id = (client_str_fn)dlsym(RTLD_DEFAULT, "mosquitto_client_id");
	p_client_username = (client_str_fn)dlsym(RTLD_DEFAULT, "mosquitto_client_username");
	return p_register && p_unregister && p_log && p_client_id && p_client_username ? 0 : -1;
}

static int on_basic_auth(int event, void *event_data, void *userdata) {
	(void)event;
	(void)userdata;
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id = p_client_id(ed->client);
	return earshotBasicAuth(ed->username, ed->password, (char *)client_id);
}

// on_acl narrows subscriptions only: Mosquitto 2.0's acl_file grants every SUBSCRIBE
// and filters messages at delivery, so without this a device asking for another
// device's topics would get a SUBACK success (and then nothing), not the 0x80 the
// protocol promises. Reads and writes are left to the acl_file, without a call
// into Go: this callback runs for every message.
static int on_acl(int event, void *event_data, void *userdata) {
	(void)event;
	(void)userdata;
	struct mosquitto_evt_acl_check *ed = event_data;
	if (ed->access != MOSQ_ACL_SUBSCRIBE) {
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	const char *username = p_client_username(ed->client);
	if (earshotSubscribe((char *)username, (char *)ed->topic) != 0) {
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER; // allowed here; the acl_file has its say too
}

static int on_reload(int event, void *event_data, void *userdata) {
	(void)event;
	(void)userdata;
	struct mosquitto_evt_reload *ed = event_data;
	earshotReload(ed->options, ed->option_count);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
	for (int i = 0; i < supported_version_count; i++) {
		if (supported_versions[i] == 5) {
			return 5;
		}
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *options, int option_count) {
	(void)userdata;
	if (resolve() != 0) {
		fprintf(stderr, "earshot-mosquitto-auth: mosquitto 2.0 broker functions not found: %s\n", dlerror());
		return MOSQ_ERR_UNKNOWN;
	}
	p_id = identifier;
	int rc = earshotInit(options, option_count);
	if (rc != MOSQ_ERR_SUCCESS) {
		return rc;
	}
	rc = p_register(identifier, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		return rc;
	}
	rc = p_register(identifier, MOSQ_EVT_ACL_CHECK, on_acl, NULL, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		return rc;
	}
	return p_register(identifier, MOSQ_EVT_RELOAD, on_reload, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count) {
	(void)userdata;
	(void)options;
	(void)option_count;
	if (p_id != NULL) {
		p_unregister(p_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
		p_unregister(p_id, MOSQ_EVT_ACL_CHECK, on_acl, NULL);
		p_unregister(p_id, MOSQ_EVT_RELOAD, on_reload, NULL);
		p_id = NULL;
	}
	earshotCleanup();
	return MOSQ_ERR_SUCCESS;
}
