/* SPDX-License-Identifier: Apache-2.0 */
/* peer_uid.h: one SOCK_DIAG_BY_FAMILY request names the client's socket by
 * its four-tuple seen from the client's side (its address is the source),
 * and the answer carries the socket's owner. */
#include "peer_uid.h"

#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static int client_socket_query(int fd, struct inet_diag_req_v2 *request)
{
	struct sockaddr_in local, peer;
	socklen_t local_len = sizeof(local), peer_len = sizeof(peer);

	if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0)
		return -errno;
	if (local.sin_family != AF_INET || peer.sin_family != AF_INET)
		return -EAFNOSUPPORT;
	*request = (struct inet_diag_req_v2){
		.sdiag_family = AF_INET,
		.sdiag_protocol = IPPROTO_TCP,
		.idiag_states = 1u << TCP_ESTABLISHED,
		.id = { .idiag_sport = peer.sin_port,
			.idiag_dport = local.sin_port,
			.idiag_src = { peer.sin_addr.s_addr },
			.idiag_dst = { local.sin_addr.s_addr },
			.idiag_cookie = { INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE } },
	};
	return 0;
}

static ssize_t exchange(const void *query, size_t query_len, void *reply, size_t reply_len)
{
	int diag = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	ssize_t got;

	if (diag < 0)
		return -errno;
	got = send(diag, query, query_len, 0);
	if (got >= 0)
		got = recv(diag, reply, reply_len, 0);
	if (got < 0)
		got = -errno;
	close(diag);
	return got;
}

static int ask_kernel(const struct inet_diag_req_v2 *request, uid_t *uid)
{
	struct {
		struct nlmsghdr header;
		struct inet_diag_req_v2 request;
	} query = { .header = { .nlmsg_len = sizeof(query),
				.nlmsg_type = SOCK_DIAG_BY_FAMILY,
				.nlmsg_flags = NLM_F_REQUEST },
		    .request = *request };
	union {
		struct nlmsghdr header;
		char bytes[1024];
	} reply;
	const struct inet_diag_msg *socket_info = NLMSG_DATA(&reply.header);
	const struct nlmsgerr *error = NLMSG_DATA(&reply.header);
	ssize_t got = exchange(&query, sizeof(query), &reply, sizeof(reply));

	if (got < 0)
		return (int)got;
	if (!NLMSG_OK(&reply.header, (size_t)got))
		return -EPROTO;
	if (reply.header.nlmsg_type == NLMSG_ERROR)
		return error->error < 0 ? error->error : -EPROTO;
	if (reply.header.nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    reply.header.nlmsg_len < NLMSG_LENGTH(sizeof(*socket_info)))
		return -EPROTO;
	if (socket_info->idiag_state != TCP_ESTABLISHED)
		return -ENOENT;
	*uid = socket_info->idiag_uid;
	return 0;
}

int peer_uid(int fd, uid_t *uid)
{
	struct inet_diag_req_v2 request;
	int rc = client_socket_query(fd, &request);

	return rc < 0 ? rc : ask_kernel(&request, uid);
}
