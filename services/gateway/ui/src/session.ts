// Who is signed in (this tab only), checked with GET /api/users/me.
import { reactive } from "vue";
import { apiKey, get, setApiKey, whenUnauthorized, type User } from "./api";

export const session = reactive<{ user: User | null; checked: boolean }>({
  user: null,
  checked: false,
});

export async function restore(): Promise<void> {
  if (apiKey() && !session.user) {
    try {
      session.user = await get<User>("/api/users/me");
    } catch {
      session.user = null;
    }
  }
  session.checked = true;
}

export async function signIn(key: string): Promise<void> {
  setApiKey(key);
  try {
    session.user = await get<User>("/api/users/me");
  } catch (error) {
    setApiKey(null);
    throw error;
  }
}

export function signOut(): void {
  setApiKey(null);
  session.user = null;
}

whenUnauthorized(() => {
  if (session.user) signOut();
});
