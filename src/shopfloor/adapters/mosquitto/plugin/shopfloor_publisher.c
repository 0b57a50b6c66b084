/*
 * Shopfloor publisher identity plugin for Mosquitto 2.0 (plugin interface v5).
 *
 * A subscriber cannot learn from MQTT who published a message, yet Shopfloor
 * stores the authenticated thing as the publisher of every message. For each
 * PUBLISH a client sends, this plugin removes every user property whose name
 * starts with "shopfloor-" (names reserved to the platform, so none can be
 * forged) and adds "shopfloor-publisher" = the client's authenticated username
 * (the thing id) and "shopfloor-message-id" = an id unique to this PUBLISH,
 * with which the bridge recognises a message the broker delivers again after a
 * reconnection. MQTT v5 subscribers, such as the Shopfloor bridge, read both.
 *
 * The bridge itself (the username given by the plugin option
 * "bridge_username") is trusted: it republishes messages that reached the
 * platform another way (HTTP, WebSocket) and names their publisher itself, so
 * its messages pass unchanged. Without the option no client is trusted.
 *
 * Written by hand: no library or stock plugin does this. Only the public
 * broker API from mosquitto_broker.h / mosquitto.h is used, so the plugin
 * builds against the headers of the Debian package mosquitto-dev.
 *
 * Mosquitto 2.0 does not pass will messages through MOSQ_EVT_MESSAGE, so a
 * will would keep whatever "shopfloor-publisher" its client put in it. The
 * broker checks a will's PUBLISH permission only after the client has gone,
 * so the plugin keeps the set of connected clients and refuses publishing to
 * a client that is not in it: wills are never delivered. This needs the
 * plugin to be loaded before the dynamic security plugin, which otherwise
 * answers every permission check first.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#define RESERVED_PREFIX "shopfloor-"
#define PUBLISHER_PROPERTY "shopfloor-publisher"
#define MESSAGE_ID_PROPERTY "shopfloor-message-id"
#define BRIDGE_USERNAME_OPTION "bridge_username"

static mosquitto_plugin_id_t *plugin_id = NULL;
static char *bridge_username = NULL;

/*
 * Message ids are 32 hex digits, the form of the platform's own ids: 64 random
 * bits drawn when the broker starts, then a counter. Ids stay unique across
 * broker restarts and across brokers without any shared state.
 */
static uint64_t id_prefix = 0;
static uint64_t id_counter = 0;

/*
 * The connected clients, as an open-addressing hash set of pointers. The
 * broker runs plugin callbacks on one thread, so no locking is needed.
 */
#define TOMBSTONE ((const struct mosquitto *)1)

static const struct mosquitto **slots = NULL;
static size_t slot_count = 0;
static size_t used_slots = 0; /* members and tombstones */
static size_t member_count = 0;

static size_t slot_of(const struct mosquitto *client)
{
	uintptr_t h = (uintptr_t)client;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (size_t)h & (slot_count - 1);
}

static bool connected_contains(const struct mosquitto *client)
{
	size_t i;

	if(slot_count == 0){
		return false;
	}
	for(i = slot_of(client); slots[i] != NULL; i = (i + 1) & (slot_count - 1)){
		if(slots[i] == client){
			return true;
		}
	}
	return false;
}

static int connected_add(const struct mosquitto *client);

static int connected_grow(void)
{
	const struct mosquitto **old = slots;
	size_t old_count = slot_count;
	size_t i;

	/* Rehashing drops the tombstones; only a table that is really full doubles. */
	if(old_count == 0){
		slot_count = 1024;
	}else if((member_count + 1) * 4 > old_count){
		slot_count = old_count * 2;
	}
	slots = calloc(slot_count, sizeof(*slots));
	if(slots == NULL){
		slots = old;
		slot_count = old_count;
		return MOSQ_ERR_NOMEM;
	}
	used_slots = 0;
	member_count = 0;
	for(i = 0; i < old_count; i++){
		if(old[i] != NULL && old[i] != TOMBSTONE){
			connected_add(old[i]);
		}
	}
	free(old);
	return MOSQ_ERR_SUCCESS;
}

static int connected_add(const struct mosquitto *client)
{
	size_t i;

	if(connected_contains(client)){
		return MOSQ_ERR_SUCCESS;
	}
	/* Keep the table at most half full so probes stay short and always end. */
	if((used_slots + 1) * 2 > slot_count && connected_grow() != MOSQ_ERR_SUCCESS){
		return MOSQ_ERR_NOMEM;
	}
	for(i = slot_of(client); slots[i] != NULL && slots[i] != TOMBSTONE; i = (i + 1) & (slot_count - 1)){
	}
	if(slots[i] == NULL){
		used_slots++;
	}
	slots[i] = client;
	member_count++;
	return MOSQ_ERR_SUCCESS;
}

static void connected_remove(const struct mosquitto *client)
{
	size_t i;

	if(slot_count == 0){
		return;
	}
	for(i = slot_of(client); slots[i] != NULL; i = (i + 1) & (slot_count - 1)){
		if(slots[i] == client){
			slots[i] = TOMBSTONE;
			member_count--;
			return;
		}
	}
}

/* True when the property is a user property whose name starts with RESERVED_PREFIX. */
static bool is_reserved_property(const mosquitto_property *prop)
{
	char *name = NULL;
	char *value = NULL;
	bool found;

	if(mosquitto_property_identifier(prop) != MQTT_PROP_USER_PROPERTY){
		return false;
	}
	if(mosquitto_property_read_string_pair(prop, MQTT_PROP_USER_PROPERTY, &name, &value, false) == NULL){
		return false;
	}
	found = name != NULL && strncmp(name, RESERVED_PREFIX, sizeof(RESERVED_PREFIX) - 1) == 0;
	mosquitto_free(name);
	mosquitto_free(value);
	return found;
}

/*
 * Append a copy of one property to a list. The broker's property list is
 * opaque, so a property is copied by reading its value with the accessor of
 * its type and adding it again.
 */
static int copy_property(mosquitto_property **dest, const mosquitto_property *prop)
{
	int identifier = mosquitto_property_identifier(prop);
	uint8_t byte_value;
	uint16_t int16_value;
	uint32_t int32_value;
	void *binary = NULL;
	uint16_t binary_len = 0;
	char *name = NULL;
	char *value = NULL;
	int rc;

	switch(identifier){
		case MQTT_PROP_PAYLOAD_FORMAT_INDICATOR:
		case MQTT_PROP_REQUEST_PROBLEM_INFORMATION:
		case MQTT_PROP_REQUEST_RESPONSE_INFORMATION:
		case MQTT_PROP_MAXIMUM_QOS:
		case MQTT_PROP_RETAIN_AVAILABLE:
		case MQTT_PROP_WILDCARD_SUB_AVAILABLE:
		case MQTT_PROP_SUBSCRIPTION_ID_AVAILABLE:
		case MQTT_PROP_SHARED_SUB_AVAILABLE:
			if(mosquitto_property_read_byte(prop, identifier, &byte_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_byte(dest, identifier, byte_value);

		case MQTT_PROP_SERVER_KEEP_ALIVE:
		case MQTT_PROP_RECEIVE_MAXIMUM:
		case MQTT_PROP_TOPIC_ALIAS_MAXIMUM:
		case MQTT_PROP_TOPIC_ALIAS:
			if(mosquitto_property_read_int16(prop, identifier, &int16_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_int16(dest, identifier, int16_value);

		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
		case MQTT_PROP_SESSION_EXPIRY_INTERVAL:
		case MQTT_PROP_WILL_DELAY_INTERVAL:
		case MQTT_PROP_MAXIMUM_PACKET_SIZE:
			if(mosquitto_property_read_int32(prop, identifier, &int32_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_int32(dest, identifier, int32_value);

		case MQTT_PROP_SUBSCRIPTION_IDENTIFIER:
			if(mosquitto_property_read_varint(prop, identifier, &int32_value, false) == NULL){
				return MOSQ_ERR_INVAL;
			}
			return mosquitto_property_add_varint(dest, identifier, int32_value);

		case MQTT_PROP_CORRELATION_DATA:
		case MQTT_PROP_AUTHENTICATION_DATA:
			if(mosquitto_property_read_binary(prop, identifier, &binary, &binary_len, false) == NULL){
				return MOSQ_ERR_NOMEM;
			}
			rc = mosquitto_property_add_binary(dest, identifier, binary, binary_len);
			mosquitto_free(binary);
			return rc;

		case MQTT_PROP_CONTENT_TYPE:
		case MQTT_PROP_RESPONSE_TOPIC:
		case MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER:
		case MQTT_PROP_AUTHENTICATION_METHOD:
		case MQTT_PROP_RESPONSE_INFORMATION:
		case MQTT_PROP_SERVER_REFERENCE:
		case MQTT_PROP_REASON_STRING:
			if(mosquitto_property_read_string(prop, identifier, &value, false) == NULL){
				return MOSQ_ERR_NOMEM;
			}
			rc = mosquitto_property_add_string(dest, identifier, value);
			mosquitto_free(value);
			return rc;

		case MQTT_PROP_USER_PROPERTY:
			if(mosquitto_property_read_string_pair(prop, identifier, &name, &value, false) == NULL){
				return MOSQ_ERR_NOMEM;
			}
			rc = mosquitto_property_add_string_pair(dest, identifier, name, value);
			mosquitto_free(name);
			mosquitto_free(value);
			return rc;

		default:
			/* An identifier this plugin does not know: refuse rather than drop data silently. */
			return MOSQ_ERR_NOT_SUPPORTED;
	}
}

/* Replace *proplist by a copy without the client's reserved user properties. */
static int strip_reserved_properties(mosquitto_property **proplist)
{
	const mosquitto_property *prop;
	mosquitto_property *kept = NULL;
	bool forged = false;
	int rc;

	for(prop = *proplist; prop != NULL; prop = mosquitto_property_next(prop)){
		if(is_reserved_property(prop)){
			forged = true;
			break;
		}
	}
	if(!forged){
		/* The common case: nothing to remove, so the list is left untouched. */
		return MOSQ_ERR_SUCCESS;
	}

	for(prop = *proplist; prop != NULL; prop = mosquitto_property_next(prop)){
		if(is_reserved_property(prop)){
			continue;
		}
		rc = copy_property(&kept, prop);
		if(rc != MOSQ_ERR_SUCCESS){
			mosquitto_property_free_all(&kept);
			return rc;
		}
	}
	/* The broker stores whatever list the event holds afterwards, and frees only that one. */
	mosquitto_property_free_all(proplist);
	*proplist = kept;
	return MOSQ_ERR_SUCCESS;
}

static bool is_bridge(const char *username)
{
	return bridge_username != NULL && username != NULL && strcmp(username, bridge_username) == 0;
}

static int add_message_id(mosquitto_property **proplist)
{
	char id[33];

	snprintf(id, sizeof(id), "%016llx%016llx",
			(unsigned long long)id_prefix, (unsigned long long)++id_counter);
	return mosquitto_property_add_string_pair(proplist, MQTT_PROP_USER_PROPERTY,
			MESSAGE_ID_PROPERTY, id);
}

static int on_message(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_message *message = event_data;
	const char *username;
	int rc;

	(void)event;
	(void)userdata;

	username = mosquitto_client_username(message->client);
	if(is_bridge(username)){
		/* The bridge names the publisher of what it republishes; see the top of this file. */
		return MOSQ_ERR_SUCCESS;
	}

	rc = strip_reserved_properties(&message->properties);
	if(rc != MOSQ_ERR_SUCCESS){
		/* Never let a message through that may still carry a forged identity. */
		mosquitto_log_printf(MOSQ_LOG_WARNING,
				"shopfloor_publisher: refusing message on '%s': cannot rewrite its properties (%d)",
				message->topic, rc);
		return rc;
	}

	if(username != NULL){
		rc = mosquitto_property_add_string_pair(&message->properties, MQTT_PROP_USER_PROPERTY,
				PUBLISHER_PROPERTY, username);
		if(rc != MOSQ_ERR_SUCCESS){
			return rc;
		}
	}
	return add_message_id(&message->properties);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *auth = event_data;

	(void)event;
	(void)userdata;

	/* The dynamic security plugin decides; a client that fails is removed on disconnect. */
	if(connected_add(auth->client) != MOSQ_ERR_SUCCESS){
		return MOSQ_ERR_NOMEM;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_disconnect *disconnect = event_data;

	(void)event;
	(void)userdata;

	connected_remove(disconnect->client);
	return MOSQ_ERR_SUCCESS;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *check = event_data;

	(void)event;
	(void)userdata;

	if(check->access == MOSQ_ACL_WRITE && !connected_contains(check->client)){
		/* Only a will is published for a client that is gone; see the top of this file. */
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				"shopfloor_publisher: not delivering the will of '%s' on '%s'",
				mosquitto_client_id(check->client), check->topic);
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;

	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5){
			return 5;
		}
	}
	return -1;
}

/* 64 bits from the kernel's random source; the clock and pid only if it cannot be read. */
static uint64_t random_prefix(void)
{
	uint64_t value = 0;
	FILE *source = fopen("/dev/urandom", "rb");

	if(source != NULL){
		if(fread(&value, sizeof(value), 1, source) != 1){
			value = 0;
		}
		fclose(source);
	}
	if(value == 0){
		struct timespec now;

		clock_gettime(CLOCK_REALTIME, &now);
		value = ((uint64_t)now.tv_sec << 32) ^ (uint64_t)now.tv_nsec ^ ((uint64_t)getpid() << 16);
	}
	return value;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
		struct mosquitto_opt *options, int option_count)
{
	int rc;
	int i;

	(void)userdata;

	plugin_id = identifier;
	id_prefix = random_prefix();
	id_counter = 0;
	for(i = 0; i < option_count; i++){
		if(strcmp(options[i].key, BRIDGE_USERNAME_OPTION) == 0 && options[i].value[0] != '\0'){
			free(bridge_username);
			bridge_username = strdup(options[i].value);
			if(bridge_username == NULL){
				return MOSQ_ERR_NOMEM;
			}
		}
	}
	rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL, NULL);
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
	}
	if(rc == MOSQ_ERR_SUCCESS){
		rc = mosquitto_callback_register(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL, NULL);
	}
	return rc;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
	(void)userdata;
	(void)options;
	(void)option_count;

	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_MESSAGE, on_message, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
	mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
	free(slots);
	slots = NULL;
	free(bridge_username);
	bridge_username = NULL;
	slot_count = 0;
	used_slots = 0;
	member_count = 0;
	return MOSQ_ERR_SUCCESS;
}
